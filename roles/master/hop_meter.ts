// Each receiving client's delivered rate, from its progress reports. Pure: time is an argument.
// A hop starts when a client is given a server (assigned or moved); its rate is measured only
// over that hop, so a re-attached client is judged again from scratch.

interface Sample {
  t: number;
  bytes: number;
}

export class HopMeter {
  readonly #window: number;
  /** Samples of the current hop, oldest first; one kept at or before the window's start. */
  #samples = new Map<string, Sample[]>();
  /** When the client's hop started, and when its byte count last grew in that hop. */
  #started = new Map<string, number>();
  #grew = new Map<string, number>();
  /** Last cumulative byte count reported by each client (kept across hops). */
  #bytes = new Map<string, number>();

  constructor(window: number) {
    this.#window = window;
  }

  /** The client starts a new hop at `at`. */
  start(id: string, at: number) {
    this.#samples.set(id, [{ t: at, bytes: this.#bytes.get(id) ?? 0 }]);
    this.#started.set(id, at);
    this.#grew.delete(id);
  }

  /** The client no longer receives (done, failed, waiting): nothing to measure. */
  stop(id: string) {
    this.#samples.delete(id);
    this.#started.delete(id);
    this.#grew.delete(id);
  }

  /** The peer left the run. */
  forget(id: string) {
    this.stop(id);
    this.#bytes.delete(id);
  }

  /** A progress report: `bytes` received in all since the client joined. */
  report(id: string, bytes: number, at: number) {
    const before = this.#bytes.get(id) ?? 0;
    this.#bytes.set(id, Math.max(before, bytes));
    const s = this.#samples.get(id);
    if (!s) return;
    if (bytes > before) this.#grew.set(id, at);
    s.push({ t: at, bytes: Math.max(before, bytes) });
    while (s.length > 2 && s[1].t <= at - this.#window) s.shift();
  }

  receiving(id: string): boolean {
    return this.#samples.has(id);
  }

  /** When the client's bytes last grew in this hop, or null (none yet, or not receiving). */
  lastGrowth(id: string): number | null {
    return this.#grew.get(id) ?? null;
  }

  /** When the client last showed life: its last growth, or its hop's start. */
  lastSign(id: string): number | null {
    return this.#grew.get(id) ?? this.#started.get(id) ?? null;
  }

  /** Bytes/s over about the last window seconds of this hop, or null when the hop is younger
   * than a window (TCP's ramp-up and the relay's first chunk are not a rate). */
  rate(id: string, at: number): number | null {
    const s = this.#samples.get(id);
    if (!s || s[0].t > at - this.#window) return null;
    const last = s[s.length - 1];
    const first = s[0];
    if (last.t - first.t < this.#window / 2) return null;
    return (last.bytes - first.bytes) / (last.t - first.t);
  }
}
