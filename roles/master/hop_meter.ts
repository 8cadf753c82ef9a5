// Each receiving client's delivered rate, from its progress reports. Pure: time is an argument.
// A hop starts when a client is given a server (assigned or moved); its rate is measured only
// over that hop, so a re-attached client is judged again from scratch.

interface Sample {
  t: number;
  bytes: number;
}

export class HopMeter {
  #window: number;
  /** Seconds of samples kept: a window, and as long again for the stall rule's look back. */
  #keep: number;
  /** Samples of the current hop, oldest first; one kept at or before the window's start. */
  #samples = new Map<string, Sample[]>();
  /** When the client's hop started, and when its byte count last grew in that hop. */
  #started = new Map<string, number>();
  #grew = new Map<string, number>();
  /** Last cumulative byte count reported by each client (kept across hops). */
  #bytes = new Map<string, number>();

  constructor(window: number, lookBack = window) {
    this.#window = window;
    this.#keep = window + lookBack;
  }

  /** Longer reports, longer windows (report_pace.ts): samples are trimmed to it as they come. */
  resize(window: number, lookBack = window) {
    this.#window = window;
    this.#keep = window + lookBack;
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
    while (s.length > 2 && s[1].t <= at - this.#keep) s.shift();
  }

  receiving(id: string): boolean {
    return this.#samples.has(id);
  }

  /** When the client's bytes last grew in this hop, or null (none yet, or not receiving). */
  lastGrowth(id: string): number | null {
    return this.#grew.get(id) ?? null;
  }

  /** When the client's current hop started (assigned or moved), or null (not receiving). */
  hopStart(id: string): number | null {
    return this.#started.get(id) ?? null;
  }

  /** When the client last showed life: its last growth, or its hop's start. */
  lastSign(id: string): number | null {
    return this.#grew.get(id) ?? this.#started.get(id) ?? null;
  }

  /** When the client's bytes first grew after time t in this hop (null: not since, or t is
   * before what is kept). */
  firstGrowthAfter(id: string, t: number): number | null {
    const s = this.#samples.get(id);
    if (!s) return null;
    let base: number | null = null;
    for (const x of s) {
      if (x.t <= t || base === null) base = x.bytes;
      else if (x.bytes > base) return x.t;
    }
    return null;
  }

  /** Since when the client has been heard (any report, growth or not) at least every `gap`
   * seconds up to `at`; null when it is silent now. A silence the whole room shares (late
   * reports, a busy master) is no one PC's: the stall rule counts a suspect's silence only from
   * when its evidence was heard again. */
  heardSince(id: string, at: number, gap: number): number | null {
    const s = this.#samples.get(id);
    if (!s || at - s[s.length - 1].t > gap) return null;
    let i = s.length - 1;
    while (i > 0 && s[i].t - s[i - 1].t <= gap) i--;
    return s[i].t;
  }

  /** Bytes/s over about the last window seconds of this hop and the bytes that took, or null
   * when the hop is younger than a window (TCP's ramp-up and the first chunk are no rate). */
  rate(id: string, at: number): number | null {
    return this.measure(id, at)?.rate ?? null;
  }

  measure(id: string, at: number): { rate: number; bytes: number } | null {
    const s = this.#samples.get(id);
    if (!s || s[0].t > at - this.#window) return null;
    const last = s[s.length - 1];
    let first = s[0];
    for (const x of s) if (x.t <= at - this.#window) first = x;
    // Too short a span, or a client that stopped reporting: no rate (the stall rule's case).
    if (last.t - first.t < this.#window / 2 || at - last.t > this.#window / 2) return null;
    const bytes = last.bytes - first.bytes;
    return { rate: bytes / (last.t - first.t), bytes };
  }
}
