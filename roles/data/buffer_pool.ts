// Reused chunk buffers for the receiver: a fixed number of chunk-sized ArrayBuffers, so a
// transfer allocates nothing per chunk and memory stays bounded (a waiter queues for one).

/** BYOB reads and worker transfers hand back new handles to the same memory, so a buffer comes
 * back as whatever handle its last user holds, or null if it was lost (detached by a cut read,
 * kept by a worker that failed): then a fresh one takes its place. */
export class BufferPool {
  #free: ArrayBuffer[] = [];
  #waiting: ((b: ArrayBuffer) => void)[] = [];
  constructor(count: number, private readonly size: number) {
    for (let i = 0; i < count; i++) this.#free.push(new ArrayBuffer(size));
  }

  /** A free buffer now, or the next one released (first come, first served). */
  acquire(): Promise<ArrayBuffer> {
    const b = this.#free.pop();
    return b ? Promise.resolve(b) : new Promise((resolve) => this.#waiting.push(resolve));
  }

  release(b: ArrayBuffer | null): void {
    const buf = b && b.byteLength === this.size ? b : new ArrayBuffer(this.size);
    const next = this.#waiting.shift();
    if (next) next(buf);
    else this.#free.push(buf);
  }

  /** Buffers free now (tests, diagnostics). */
  get free(): number {
    return this.#free.length;
  }
}
