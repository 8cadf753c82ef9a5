// Reading what a receiver wrote back from its target: verify-behind (each chunk read back in
// the background soon after it was written, SHA-256 only: MD5 was checked on arrival) and the
// check of chunks on the target that resume and the final read-back use (imagetools'
// verifyChunks, the same check as `cascade verify`).
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { ReceiveError } from "./receive_error.ts";
import {
  chunkLength,
  chunkOffset,
  type ImageReader,
  type Manifest,
  verifyChunks,
} from "../../imagetools/mod.ts";
import { HASH_ALGOS } from "../../imagetools/hashing/mod.ts";
import { allocAligned } from "../../imagetools/kit/mod.ts";

/** Bytes written at offset `at` of a chunk (a copy): read back and compared. */
export interface WrittenRun {
  at: number;
  bytes: Uint8Array;
}

/** A verified chunk's bytes, lent to verify-behind until its read-back is compared; `release`
 * hands the memory back (to the transfer's buffer pool). */
export interface VerifiedBytes {
  bytes: Uint8Array;
  release(): void;
}

/** Verified chunks verify-behind holds at once to compare with, in bytes. Its queue is mostly
 * a chunk or two behind the writes, so a few MiB would do; 32 MiB covers a disk that lags some
 * 0.25 s at 125 MB/s and stays small beside a lab PC's memory. Past it a chunk is hashed. */
export const COMPARE_HOLD_BYTES = 32 << 20;

/**
 * Verify-behind: chunks read back one at a time in the background after they were written, so
 * the read-back at the end is short (12 PCs reading a whole disk back at the end on 2 cores
 * cost 0.7-3.7 s). A chunk counts as read back only if it is still held when its read ends.
 * The disk's bytes must equal verified bytes: compared with the chunk's verified buffer while
 * verify-behind holds it (memcmp, ~50 GB/s here), else hashed (SHA-256, ~1.5 GB/s: 0.55-0.65
 * CPU s/GB of a relay's budget).
 */
export class VerifyBehind {
  #ok: Uint8Array;
  #queue: [number, readonly WrittenRun[] | undefined, VerifiedBytes | undefined][] = [];
  /** Settles when the queue is empty (never rejects). */
  #done: Promise<void> = Promise.resolve();
  #stopped = false;
  /** One buffer for every read, page-aligned: the target reads it around the page cache. */
  #buf?: Uint8Array;
  #holding = 0;
  readonly #holdMax: number;

  constructor(
    private readonly target: ImageReader,
    private readonly manifest: Manifest,
    private readonly stillHeld: (index: number) => boolean,
    holdBytes = COMPARE_HOLD_BYTES,
  ) {
    this.#ok = new Uint8Array(manifest.chunks.length);
    this.#holdMax = Math.max(1, Math.floor(holdBytes / manifest.chunkSize));
  }

  /** Read chunk `index` back soon (it was just written); with `runs` (a delta's writes: the
   * rest of the chunk was read from this target and verified whole), only those, compared.
   * `verified`: the chunk's verified bytes, compared with in place of hashing if there is room
   * to hold them; returns whether they were taken (then `release` is called once compared). */
  queue(index: number, runs?: readonly WrittenRun[], verified?: VerifiedBytes): boolean {
    if (this.#stopped) return false;
    const take = !runs && verified !== undefined && this.#holding < this.#holdMax;
    if (take) this.#holding++;
    this.#queue.push([index, runs, take ? verified : undefined]);
    if (this.#queue.length > 1) return take; // The running loop takes it.
    this.#done = (async () => {
      const m = this.manifest;
      const buf = this.#buf ??= allocAligned(m.chunkSize);
      try {
        while (this.#queue.length > 0 && !this.#stopped) {
          const [i, runs, verified] = this.#queue[0];
          const ok = runs
            ? await this.#same(i, runs, buf)
            : verified
            ? await this.#same(i, [{ at: 0, bytes: verified.bytes }], buf)
            : await this.#good(i, buf);
          if (ok && this.stillHeld(i)) this.#ok[i] = 1;
          this.#release(this.#queue.shift()?.[2]);
        }
      } catch {
        // The target failed or was closed: stop; the final read-back checks whatever is left.
        this.#stopped = true;
      } finally {
        for (const [, , verified] of this.#queue) this.#release(verified);
        this.#queue.length = 0;
      }
    })();
    return take;
  }

  #release(verified: VerifiedBytes | undefined): void {
    if (!verified) return;
    this.#holding--;
    verified.release();
  }

  async #good(i: number, buf: Uint8Array): Promise<boolean> {
    const m = this.manifest;
    const view = buf.subarray(0, chunkLength(m, i));
    const n = await this.target.readAt(chunkOffset(m, i), view);
    return n === view.length &&
      createHash("sha256").update(view).digest("hex") === m.chunks[i].sha256;
  }

  async #same(i: number, runs: readonly WrittenRun[], buf: Uint8Array): Promise<boolean> {
    for (const { at, bytes } of runs) {
      const view = buf.subarray(0, bytes.length);
      const n = await this.target.readAt(chunkOffset(this.manifest, i) + at, view);
      if (
        n !== bytes.length ||
        !Buffer.from(view.buffer, view.byteOffset, n).equals(
          Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length),
        )
      ) {
        return false;
      }
    }
    return true;
  }

  /** Chunk `index`'s verified bytes while they wait here to be compared (a relay serves a
   * held chunk from them instead of reading its disk). */
  bytesOf(index: number): Uint8Array | undefined {
    for (const [i, , verified] of this.#queue) if (i === index && verified) return verified.bytes;
    return undefined;
  }

  /** Resolves once no read is in flight. */
  settle(): Promise<void> {
    return this.#done;
  }

  /** Chunk `index` was read and found good on the target by other means (the resume scan
   * checks both hashes, as the read-back would): it need not be read back again. */
  checked(index: number): void {
    this.#ok[index] = 1;
  }

  /** Chunk `index` changed (unmarked): it must be read back again. */
  forget(index: number): void {
    this.#ok[index] = 0;
  }

  /** The chunks not read back good since they were written, in order; forgets the rest, so a
   * later call lists every chunk again. Call after settle(). */
  takeUnchecked(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.#ok.length; i++) if (!this.#ok[i]) out.push(i);
    this.#ok.fill(0);
    return out;
  }
}

/** The chunks of `indices` that the target does not hold as the manifest says, ascending:
 * imagetools' verifyChunks (SHA-256, and MD5 when `md5`; a zero chunk must read as zeros). */
export async function badOnTarget(
  target: ImageReader,
  m: Manifest,
  indices: readonly number[],
  opts: {
    md5: boolean;
    progress?: { update(done: number): void };
    onChunk?: (index: number, ok: boolean, zeros: boolean) => void;
    signal?: AbortSignal;
    batch?: number;
  },
): Promise<number[]> {
  // A read the disk refuses is the disk's failure, named with its byte offset.
  const reader: ImageReader = {
    path: target.path,
    size: target.size,
    readAt: async (offset, into) => {
      try {
        return await target.readAt(offset, into);
      } catch (cause) {
        throw new ReceiveError(
          "read-failed",
          `Cannot read "${m.name}" back from "${target.path}" at byte ${offset}: ${
            (cause as Error).message
          }`,
          { cause },
        );
      }
    },
  };
  const bad = await verifyChunks(reader, m, {
    indices,
    algos: opts.md5 ? HASH_ALGOS : ["sha256"],
    progress: opts.progress,
    onChunk: opts.onChunk,
    signal: opts.signal,
    batch: opts.batch,
  });
  return [...new Set(bad.map((b) => b.index))];
}

/** Read this PC's own version of chunk `index` into `buffer` (for a delta). */
export async function readOwn(
  target: ImageReader,
  m: Manifest,
  index: number,
  buffer: ArrayBuffer,
): Promise<ArrayBuffer> {
  const length = chunkLength(m, index);
  let n: number;
  try {
    n = await target.readAt(chunkOffset(m, index), new Uint8Array(buffer, 0, length));
  } catch (cause) {
    throw new ReceiveError(
      "read-failed",
      `Cannot read chunk ${index} of "${m.name}" from "${target.path}" at byte ${
        chunkOffset(m, index)
      }: ${(cause as Error).message}`,
      { index, cause },
    );
  }
  if (n !== length) {
    throw new ReceiveError(
      "read-failed",
      `Cannot read chunk ${index} of "${m.name}" from "${target.path}": it ends after ${n} of ${length} bytes`,
      { index },
    );
  }
  return buffer;
}
