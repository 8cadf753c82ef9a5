// The client's progress ticker at the pace the master asks for: its welcome names the interval
// (progressMs) and a "pace" message lengthens it as the room grows (the master's
// report_pace.ts says why). A master that names none leaves the half second.
import type { MasterMessage } from "../protocol/mod.ts";

/** Progress every half second unless the master says otherwise: the master's stall rule waits
 * 2 reports (adapt.ts), scaled to what it told. */
export const PROGRESS_MS = 500;
/** What a told interval is held to: a master is trusted, but a typo must not flood or silence. */
const MIN_MS = 100, MAX_MS = 60_000;

/** Starts `fn` every `ms`; returns how to stop it (tests pass one that records the intervals). */
export type Every = (ms: number, fn: () => void) => () => void;

const realEvery: Every = (ms, fn) => {
  const t = setInterval(fn, ms);
  return () => clearInterval(t);
};

/** The interval a master message names (welcome or pace), held to sane bounds, or undefined. */
export function toldInterval(msg: MasterMessage): number | undefined {
  if (msg.type !== "welcome" && msg.type !== "pace") return undefined;
  const ms = msg.progressMs;
  if (typeof ms !== "number" || !Number.isFinite(ms)) return undefined;
  return Math.min(MAX_MS, Math.max(MIN_MS, Math.round(ms)));
}

export class ReportTicker {
  #ms = PROGRESS_MS;
  #stop: () => void;
  readonly #fn: () => void;
  readonly #every: Every;

  constructor(fn: () => void, every: Every = realEvery) {
    this.#fn = fn;
    this.#every = every;
    this.#stop = every(this.#ms, fn);
  }

  /** Milliseconds between ticks now. */
  get ms(): number {
    return this.#ms;
  }

  /** Take the interval a master message names, if any (restarting the ticker on a change); a
   * welcome that names none (a master from before it) means the half second again. */
  follow(msg: MasterMessage) {
    const ms = toldInterval(msg) ?? (msg.type === "welcome" ? PROGRESS_MS : undefined);
    if (ms === undefined || ms === this.#ms) return;
    this.#ms = ms;
    this.#stop();
    this.#stop = this.#every(ms, this.#fn);
  }

  stop() {
    this.#stop();
  }
}
