// An upload cap for a server: a ChunkSource decorator that hands out chunks no faster than a
// given rate, so an admin can keep a lab's uplinks usable (and tests can slow a transfer down).
import type { ChunkSource, ReadOptions } from "./chunk_source.ts";

/** Reservation-based pacing (pure): each read books its bytes after the previous booking. */
export class Pacer {
  #next = 0;
  constructor(readonly bytesPerSecond: number) {
    if (!(bytesPerSecond > 0)) {
      throw new RangeError(`Invalid rate limit ${bytesPerSecond}: must be > 0 bytes per second`);
    }
  }
  /** Seconds to wait before handing out `bytes` at time `now` (seconds). */
  book(bytes: number, now: number): number {
    const start = Math.max(now, this.#next);
    this.#next = start + bytes / this.bytesPerSecond;
    return this.#next - now;
  }
}

export function rateLimited(source: ChunkSource, bytesPerSecond: number): ChunkSource {
  const pacer = new Pacer(bytesPerSecond);
  const pace = async (bytes: number) => {
    const wait = pacer.book(bytes, performance.now() / 1000);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait * 1000));
  };
  return {
    get manifest() {
      return source.manifest;
    },
    get manifestBytes() {
      return source.manifestBytes;
    },
    get imageId() {
      return source.imageId;
    },
    has: (i) => source.has(i),
    heldCount: () => source.heldCount(),
    close: () => source.close?.(),
    pace,
    async read(index: number, opts?: ReadOptions) {
      const bytes = await source.read(index, opts);
      if (opts?.paced !== false) await pace(bytes.length);
      return bytes;
    },
    // What goes on the wire is paced: compressed bytes where the chunk is sent so.
    async readStored(index: number, opts?: ReadOptions) {
      const stored = await source.readStored(index, opts);
      if (opts?.paced !== false) await pace(stored.bytes.length);
      return stored;
    },
  };
}
