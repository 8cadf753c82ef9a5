// The receive rate a client reports to the master: bytes per second over the last few seconds,
// from samples of a running byte count. The clock is injected (tests drive it by hand).

export const RATE_WINDOW_MS = 3000;

export class RateMeter {
  #samples: [number, number][] = [];
  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly windowMs = RATE_WINDOW_MS,
  ) {}

  /** Record the running total of bytes received, now. */
  sample(totalBytes: number): void {
    const now = this.now();
    const s = this.#samples;
    s.push([now, totalBytes]);
    // Keep one sample older than the window so the rate spans it whole.
    while (s.length > 2 && now - s[1][0] > this.windowMs) s.shift();
  }

  /** Bytes per second between the oldest and newest samples; 0 when idle for a whole window. */
  rate(): number {
    const s = this.#samples;
    if (s.length < 2) return 0;
    const [t0, b0] = s[0];
    const [t1, b1] = s[s.length - 1];
    // Idle since the last sample: nothing is arriving now.
    if (this.now() - t1 > this.windowMs) return 0;
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }
}
