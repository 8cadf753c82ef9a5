// Reading what a receiver wrote back from its target: verify-behind (each chunk read back in
// the background soon after it was written, SHA-256 only: MD5 was checked on arrival) and the
// check of chunks on the target that resume and the final read-back use (imagetools'
// verifyChunks, the same check as `cascade verify`).
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

/**
 * Verify-behind: chunks read back one at a time in the background after they were written, so
 * the read-back at the end is short (12 PCs reading a whole disk back at the end on 2 cores
 * cost 0.7-3.7 s). A chunk counts as read back only if it is still held when its read ends.
 */
export class VerifyBehind {
  #ok: Uint8Array;
  #queue: number[] = [];
  /** Settles when the queue is empty (never rejects). */
  #done: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(
    private readonly target: ImageReader,
    private readonly manifest: Manifest,
    private readonly stillHeld: (index: number) => boolean,
  ) {
    this.#ok = new Uint8Array(manifest.chunks.length);
  }

  /** Read chunk `index` back soon (it was just written). */
  queue(index: number): void {
    if (this.#stopped) return;
    this.#queue.push(index);
    if (this.#queue.length > 1) return; // The running loop takes it.
    this.#done = (async () => {
      const m = this.manifest;
      const buf = new Uint8Array(m.chunkSize);
      try {
        while (this.#queue.length > 0 && !this.#stopped) {
          const i = this.#queue[0];
          const length = chunkLength(m, i);
          const view = buf.subarray(0, length);
          const n = await this.target.readAt(chunkOffset(m, i), view);
          if (
            n === length && this.stillHeld(i) &&
            createHash("sha256").update(view).digest("hex") === m.chunks[i].sha256
          ) this.#ok[i] = 1;
          this.#queue.shift();
        }
      } catch {
        // The target failed or was closed: stop; the final read-back checks whatever is left.
        this.#stopped = true;
      } finally {
        this.#queue.length = 0;
      }
    })();
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
