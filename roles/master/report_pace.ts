// How often a PC reports its progress, from the size of the room, and the in-run rules'
// thresholds that follow from it. Pure: no clock, no I/O.
//
// Why: every report costs the master a socket read, a frame and a JSON parse on its one thread
// (about 18 µs on a quiet machine, the scheduler's own part under 1 µs; BENCHMARKS.md). At the
// client's half second, 1,500 PCs are 3,000 reports a second: 5.5-6.3 % of a core on a quiet
// machine, 12-16 % at load 8-13 (the goal is 10 %). So the master keeps the room to about
// REPORTS_PER_SECOND reports a second: a room of up to 500 PCs keeps the half second (the
// dashboard's one-second feel, a stall seen within 1-1.5 s), a bigger one reports every 1, 1.5,
// 2 s ... (at most 5 s), which costs the room nothing but a slower look at a stall.
//
// A stall is judged from silence, so the thresholds measured at the half second (adapt.ts:
// window 2 s = 4 reports, stallAfter 1 s = 2 reports, a look every half report) scale with the
// interval: at 1.5 s a PC is stalled after 3 s without a byte while its upstream moved, as it
// was after 1 s at 0.5 s. The master only ever lengthens the interval in a run (a room that
// shrinks keeps it), so the thresholds always cover every PC's interval, including a PC that
// has not yet heard the new one or an old client that keeps the half second: nobody is judged
// by a shorter silence than it was told to keep.
import type { AdaptConfig } from "./adapt.ts";

/** The interval the thresholds in adapt.ts were measured at (the client's default). */
export const BASE_REPORT_MS = 500;
/** The reports a second the master budgets for a room (at 18 µs each: 1.8 % of a quiet core,
 * about 4-5 % at load 8-13). */
export const REPORTS_PER_SECOND = 1000;
/** The longest interval: past it a stall would go unseen for over 10 s. */
export const MAX_REPORT_MS = 5000;
/** Intervals are whole steps of this, so a growing room changes it a few times, not per PC. */
const STEP_MS = 500;

/** Milliseconds between a PC's progress reports in a room of `pcs` PCs. */
export function reportInterval(pcs: number): number {
  if (!(pcs >= 0) || !Number.isFinite(pcs)) {
    throw new RangeError(`Invalid room size "${pcs}": must be a number of PCs >= 0`);
  }
  const ms = Math.ceil((pcs / REPORTS_PER_SECOND) * 1000 / STEP_MS) * STEP_MS;
  return Math.min(MAX_REPORT_MS, Math.max(BASE_REPORT_MS, ms));
}

/** The in-run rules' thresholds for reports every `reportMs`: the time-based ones (window,
 * stallAfter, scanEvery) stretched by reportMs / BASE_REPORT_MS, never shortened. */
export function scaledAdapt(base: AdaptConfig, reportMs: number): AdaptConfig {
  if (!(reportMs > 0) || !Number.isFinite(reportMs)) {
    throw new RangeError(`Invalid report interval "${reportMs}": must be milliseconds > 0`);
  }
  const k = Math.max(1, reportMs / BASE_REPORT_MS);
  return {
    ...base,
    window: base.window * k,
    stallAfter: base.stallAfter * k,
    scanEvery: base.scanEvery * k,
  };
}
