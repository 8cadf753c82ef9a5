// The report interval from the room's size, the in-run thresholds scaled to it, and the
// scheduler judging a room that reports every 1.5 s: a healthy chain (reports out of phase by
// up to an interval) is never demoted, a relay that stops still is, after its scaled silence.
import assert from "node:assert/strict";
import { DEFAULT_ADAPT } from "./adapt.ts";
import {
  BASE_REPORT_MS,
  MAX_REPORT_MS,
  reportInterval,
  REPORTS_PER_SECOND,
  scaledAdapt,
} from "./report_pace.ts";
import { type Decision, Scheduler, type SchedulerConfig } from "./scheduler.ts";

Deno.test("report pace: the half second up to 500 PCs, then 0.5 s steps, at most 5 s", () => {
  const table: [number, number][] = [
    [0, 500],
    [1, 500],
    [40, 500],
    [500, 500],
    [501, 1000],
    [700, 1000],
    [1000, 1000],
    [1001, 1500],
    [1500, 1500],
    [2000, 2000],
    [5000, 5000],
    [50_000, 5000],
  ];
  assert.deepEqual(table.map(([pcs]) => [pcs, reportInterval(pcs)]), table);
  assert.throws(() => reportInterval(-1), RangeError);
  assert.throws(() => reportInterval(NaN), RangeError);
});

Deno.test("report pace: for every room the master hears at most its budget, and the interval never shrinks", () => {
  let last = 0;
  for (let pcs = 0; pcs <= 20_000; pcs++) {
    const ms = reportInterval(pcs);
    assert.ok(ms >= last, `interval for ${pcs} PCs shrank: ${ms} < ${last}`);
    assert.ok(ms >= BASE_REPORT_MS && ms <= MAX_REPORT_MS && ms % 500 === 0);
    const perSecond = pcs * 1000 / ms;
    // Within budget, unless the room is so big that the longest interval cannot keep it there.
    if (ms < MAX_REPORT_MS) assert.ok(perSecond <= REPORTS_PER_SECOND, `${pcs} PCs`);
    last = ms;
  }
});

Deno.test("report pace: the stall and slow thresholds keep their count of reports", () => {
  assert.deepEqual(scaledAdapt(DEFAULT_ADAPT, 500), DEFAULT_ADAPT);
  assert.deepEqual(scaledAdapt(DEFAULT_ADAPT, 1500), {
    ...DEFAULT_ADAPT,
    window: 6,
    stallAfter: 3,
    scanEvery: 0.75,
  });
  // Never shorter than measured at the half second, whatever a caller says.
  assert.deepEqual(scaledAdapt(DEFAULT_ADAPT, 100), DEFAULT_ADAPT);
  for (let ms = 500; ms <= MAX_REPORT_MS; ms += 500) {
    const a = scaledAdapt(DEFAULT_ADAPT, ms);
    const reports = (s: number) => s / (ms / 1000);
    assert.equal(reports(a.stallAfter), 2, `stallAfter at ${ms} ms`);
    assert.equal(reports(a.window), 4, `window at ${ms} ms`);
    assert.equal(reports(a.scanEvery), 0.5, `scanEvery at ${ms} ms`);
    assert.equal(a.slowShare, DEFAULT_ADAPT.slowShare);
    assert.equal(a.minBytes, DEFAULT_ADAPT.minBytes);
  }
  assert.throws(() => scaledAdapt(DEFAULT_ADAPT, 0), RangeError);
});

const RELAY: SchedulerConfig = { linger: 10, mode: "relay", relayCapacity: 1 };
const MB = 1e6;
const EVERY = 1.5;
/** fake -> a -> x -> d: each reports every 1.5 s at 12 MB/s, x and d out of phase with a. */
const PHASE: Record<string, number> = { a: 0, x: 1.4, d: 0.7 };

function chain(paced: boolean): { s: Scheduler; decided: Decision[] } {
  const s = new Scheduler(RELAY);
  const decided: Decision[] = [];
  if (paced) decided.push(...s.apply({ type: "pace", reportMs: EVERY * 1000, at: 0 }));
  decided.push(...s.apply({ type: "server-ready", id: "fake", capacity: 1, kind: "fake", at: 0 }));
  for (const id of ["a", "x", "d"]) {
    decided.push(...s.apply({ type: "client-ready", id, at: 0 }));
  }
  return { s, decided };
}

/** Every report in time order up to `until`; `stopsAt`: x (and d below it) stop growing then. */
function play(s: Scheduler, until: number, stopsAt = Infinity): Decision[] {
  const reports: [number, string][] = [];
  for (const id of Object.keys(PHASE)) {
    for (let t = PHASE[id] + EVERY; t <= until; t += EVERY) reports.push([t, id]);
  }
  reports.sort((p, q) => p[0] - q[0]);
  const out: Decision[] = [];
  for (const [t, id] of reports) {
    const moving = id === "a" ? t : Math.min(t, stopsAt);
    out.push(...s.apply({ type: "progress", id, bytes: 12 * MB * moving, at: t }));
  }
  return out;
}

const demoted = (ds: Decision[]) =>
  ds.filter((d) => d.type === "demoted").map((d) => d.type === "demoted" && [d.peer, d.reason]);

Deno.test("scheduler at a 1.5 s pace: a healthy chain is never demoted", () => {
  const paced = chain(true);
  assert.deepEqual(demoted([...paced.decided, ...play(paced.s, 60)]), []);
  assert.deepEqual(paced.s.snapshot().leaves, []);
});

Deno.test("scheduler at a 1.5 s pace, judged by the half second's thresholds: a stop goes unseen", () => {
  // Every PC is silent for longer than stallAfter (1 s) between reports: the stall rule takes
  // that as the room's silence, no one PC's, so the thresholds must follow the pace.
  const { s } = chain(false);
  assert.deepEqual(demoted(play(s, 30, 10)), []);
});

Deno.test("scheduler at a 1.5 s pace: a relay that stops is demoted after 2 reports of silence", () => {
  const { s } = chain(true);
  const out = play(s, 30, 10);
  const d = out.find((d) => d.type === "demoted");
  assert.ok(d && d.type === "demoted", "x is demoted");
  assert.deepEqual([d.peer, d.reason], ["x", "stalled"]);
  // x's last growth was heard at 9.9 s; a grew after it; x is judged at least 3 s after that
  // (stallAfter scaled from 1 s), and within two more reports of a.
  assert.ok(d.at >= 9.9 + 3 && d.at <= 9.9 + 3 + 2 * EVERY, `demoted at ${d.at}`);
  assert.deepEqual(s.snapshot().leaves, ["x"]);
});
