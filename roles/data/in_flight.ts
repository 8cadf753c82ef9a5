// A request of the receiver in flight, and the watch that gives up on it: silence for too long
// (the idle timer), or a chunk not whole by its deadline (the minimum rate, from its first byte).

/** One request in flight: its own abort, when it last received bytes (the idle timer), and
 * by when the chunk it is reading must be whole (the minimum rate). */
export interface InFlight {
  ctl: AbortController;
  last: number;
  timedOut: boolean;
  timeoutMs: number;
  /** performance.now() by which the chunk being read must be whole (Infinity: none begun). */
  deadline: number;
  /** Set when the deadline (not the idle timer) cut the request. */
  slow: boolean;
  /** The deadline running is the response head's (headDeadlineMs), not a chunk's. */
  head?: boolean;
  pace: ChunkPace;
}

/** How fast a chunk must come once its first byte did: within graceMs + length / minRate.
 * Silence alone is not enough to judge (a server that sends a byte every few seconds resets
 * any idle timer): 200 and then a trickle is given up on in seconds, not minutes. */
export interface ChunkPace {
  /** Bytes per second (default 128 KiB/s: 1 Mbit/s, far below any lab port shared 3 ways). */
  minRate: number;
  /** Added to every chunk's deadline (default 4000 ms: TCP's slow start, a busy peer). */
  graceMs: number;
}

export const DEFAULT_PACE: ChunkPace = { minRate: 128 * 1024, graceMs: 4000 };

/** A request in flight, watched by the idle timer from now on. */
export function newInFlight(timeoutMs: number, pace: ChunkPace = DEFAULT_PACE): InFlight {
  return {
    ctl: new AbortController(),
    last: performance.now(),
    timedOut: false,
    timeoutMs,
    deadline: Infinity,
    slow: false,
    pace,
  };
}

/** Abort every request of `active` that received nothing for `timeoutMs`, or whose chunk is
 * not whole by its deadline; returns the stop. */
export function watchIdle(active: Set<InFlight>, timeoutMs: number): () => void {
  const ticker = setInterval(() => {
    const now = performance.now();
    for (const r of active) {
      const slow = now > r.deadline;
      if (now - r.last > timeoutMs || slow) {
        r.timedOut = true;
        r.slow = slow;
        r.ctl.abort();
      }
    }
  }, Math.max(10, Math.min(250, timeoutMs / 4)));
  return () => clearInterval(ticker);
}

/** Milliseconds a stream's response head may take: a chunk server answers a stream's head at
 * once (a relay waits for chunks inside the body), so a server that accepts and says nothing
 * is given up on in seconds, not at the idle timer's minute. Twice the grace, as on a busy PC. */
export function headDeadlineMs(pace: ChunkPace): number {
  return 2 * pace.graceMs;
}

/** Milliseconds a chunk of `bytes` may take from its first byte at the minimum rate. */
export function chunkDeadlineMs(pace: ChunkPace, bytes: number): number {
  return pace.graceMs + (bytes / pace.minRate) * 1000;
}
