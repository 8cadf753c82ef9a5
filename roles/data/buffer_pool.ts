// Reused chunk buffers for the receiver: a fixed number of chunk-sized ArrayBuffers, so a
// transfer allocates nothing per chunk and memory stays bounded (a waiter queues for one).

/** BYOB reads and worker transfers hand back new handles to the same memory, so a buffer comes
 * back as whatever handle its last user holds, or null if it was lost (detached by a cut read,
 * kept by a worker that failed): then a fresh one takes its place. */
export class BufferPool {
  #free: ArrayBuffer[] = [];
  /** Buffers lent out (verify-behind compares a written chunk with the verified bytes it
   * holds) and given back: each takes the place of the next buffer lost or lent, so lending
   * allocates only up to the most lent at once. */
  #spare: ArrayBuffer[] = [];
  #waiting: ((b: ArrayBuffer) => void)[] = [];
  constructor(count: number, private readonly size: number) {
    for (let i = 0; i < count; i++) this.#free.push(new ArrayBuffer(size));
  }

  /** A free buffer now, or the next one released (first come, first served). */
  acquire(): Promise<ArrayBuffer> {
    const b = this.#free.pop();
    return b ? Promise.resolve(b) : new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** `b` back, or null: lost, or lent out (then given back later by giveBack). */
  release(b: ArrayBuffer | null): void {
    const buf = b && b.byteLength === this.size
      ? b
      : this.#spare.pop() ?? new ArrayBuffer(this.size);
    const next = this.#waiting.shift();
    if (next) next(buf);
    else this.#free.push(buf);
  }

  /** A buffer lent out (released as null) comes back. */
  giveBack(b: ArrayBuffer): void {
    if (b.byteLength === this.size) this.#spare.push(b);
  }

  /** Buffers free now (tests, diagnostics). */
  get free(): number {
    return this.#free.length;
  }
}
