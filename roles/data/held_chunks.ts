// Which chunks a receiver holds (verified and on its target), and the relay's waiting: a
// request for a chunk not held yet waits, bounded, until it is marked held.
import type { Manifest } from "../../imagetools/mod.ts";
import { ChunkUnavailableError } from "./chunk_source.ts";

export class HeldChunks {
  #held: Uint8Array;
  #count = 0;
  /** Called with true when the chunk is marked held, false when poked. */
  #waiters = new Map<number, Set<(held: boolean) => void>>();

  constructor(readonly manifest: Manifest) {
    this.#held = new Uint8Array(manifest.chunks.length);
  }

  get total(): number {
    return this.#held.length;
  }

  /** Chunks held, zero chunks included once marked. */
  get count(): number {
    return this.#count;
  }

  /** Chunk `index` is marked held (verified and on the target). */
  holds(index: number): boolean {
    return this.#held[index] === 1;
  }

  /** Chunk `index` can be served now: held, or a zero chunk (it reads as zeros). */
  has(index: number): boolean {
    return Number.isSafeInteger(index) && index >= 0 && index < this.#held.length &&
      (this.#held[index] === 1 || this.manifest.chunks[index].zero);
  }

  /** Mark chunk `index` held and wake whoever waits for it; false if it already was. */
  mark(index: number): boolean {
    if (this.#held[index]) return false;
    this.#held[index] = 1;
    this.#count++;
    const set = this.#waiters.get(index);
    if (set) { for (const wake of [...set]) wake(true); }
    return true;
  }

  /** Something else about chunk `index` changed (a relay began receiving it): wake the
   * waiters whose `until` now holds. */
  poke(index: number) {
    const set = this.#waiters.get(index);
    if (set) { for (const wake of [...set]) wake(false); }
  }

  /** Chunk `index` is no longer held (it read back bad); false if it was not held. */
  unmark(index: number): boolean {
    if (!this.#held[index]) return false;
    this.#held[index] = 0;
    this.#count--;
    return true;
  }

  /** Non-zero chunks not held yet, in order. */
  missing(): number[] {
    const out: number[] = [];
    const chunks = this.manifest.chunks;
    for (let i = 0; i < chunks.length; i++) if (!this.#held[i] && !chunks[i].zero) out.push(i);
    return out;
  }

  /** Resolves once chunk `index` is held (at once if it is), or `until` holds when poked (or
   * at once); rejects with ChunkUnavailableError after `waitMs`, or with the signal's reason
   * when it aborts. */
  waitFor(
    index: number,
    waitMs: number,
    signal?: AbortSignal,
    until?: () => boolean,
  ): Promise<void> {
    signal?.throwIfAborted();
    if (this.#held[index] || until?.()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let set = this.#waiters.get(index);
      if (!set) this.#waiters.set(index, set = new Set());
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        set.delete(wake);
        if (set.size === 0 && this.#waiters.get(index) === set) this.#waiters.delete(index);
      };
      const wake = (held: boolean) => {
        if (!held && !until?.()) return;
        done();
        resolve();
      };
      const onAbort = () => {
        done();
        reject(signal!.reason);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new ChunkUnavailableError(
            `Chunk ${index} of "${this.manifest.name}" did not arrive within ${waitMs} ms`,
          ),
        );
      }, waitMs);
      set.add(wake);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Requests waiting now (tests: none may be left behind). */
  waiting(): number {
    let n = 0;
    for (const set of this.#waiters.values()) n += set.size;
    return n;
  }
}
