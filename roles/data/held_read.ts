// A held chunk read for serving (a relay's downstream asking for a chunk it already holds:
// about half of what a relay serves, 106 of 224 chunks in a counted 256 MiB run). Each such read
// went into a fresh zeroed buffer through the page cache, which O_DIRECT writes leave cold: the
// kernel allocated, filled, copied and freed a page per 4 KiB, for bytes read once (what
// verify-behind's read-back cost before it went around the cache). Now the bytes come from the
// chunk's verified buffer while verify-behind still holds it, else from the disk through O_DIRECT
// into a reused page-aligned buffer; either way they are lent to a synchronous `use` (which
// copies them into the frame or reply), so a buffer is never reused while a reply still needs it.
import { chunkLength, chunkOffset, type ImageReader, type Manifest } from "../../imagetools/mod.ts";
import { allocAligned } from "../../imagetools/kit/mod.ts";

export interface HeldReadStats {
  /** Served from a verified buffer still held (no disk read). */
  fromMemory: number;
  /** Read from the disk into an aligned buffer. */
  fromDisk: number;
}

export class HeldReads {
  /** Free aligned chunk buffers: as many as reads were ever in flight at once. */
  #free: Uint8Array[] = [];
  #stats: HeldReadStats = { fromMemory: 0, fromDisk: 0 };

  constructor(
    private readonly target: ImageReader,
    private readonly manifest: Manifest,
    /** The verified bytes of chunk `index` while something still holds them. */
    private readonly verified: (index: number) => Uint8Array | undefined,
  ) {}

  /** Chunk `index`'s bytes (a held, non-zero chunk), lent to `use`: valid only until it
   * returns, so it must copy what it keeps. */
  async with<T>(index: number, use: (bytes: Uint8Array) => T): Promise<T> {
    const m = this.manifest;
    const length = chunkLength(m, index);
    const held = this.verified(index);
    if (held?.length === length) {
      this.#stats.fromMemory++;
      return use(held);
    }
    const buf = this.#free.pop() ?? allocAligned(m.chunkSize);
    try {
      const view = buf.subarray(0, length);
      const n = await this.target.readAt(chunkOffset(m, index), view);
      if (n !== length) {
        throw new Error(
          `Cannot read chunk ${index} of "${m.name}" from "${this.target.path}": it ends after ${n} of ${length} bytes`,
        );
      }
      this.#stats.fromDisk++;
      return use(view);
    } finally {
      this.#free.push(buf);
    }
  }

  stats(): HeldReadStats {
    return { ...this.#stats };
  }
}
