// Reading what a receiver wrote back from its target: verify-behind (each chunk read back in
// the background soon after it was written, SHA-256 only: MD5 was checked on arrival) and the
// check of chunks on the target against the manifest that resume and the final read-back use.
import { createHash } from "node:crypto";
import { chunkLength, chunkOffset, type Manifest } from "../../imagetools/mod.ts";
import { isAllZero, Md5Hasher } from "../../imagetools/hashing/mod.ts";
import type { Progress } from "../../imagetools/kit/mod.ts";
import { BufferPool } from "./buffer_pool.ts";

/** What read-back reads from: the target disk (or anything that reads like one). */
export interface TargetReader {
  /** Fill `into` from `offset`; returns the bytes read (fewer only at the end). */
  readAt(offset: number, into: Uint8Array): Promise<number>;
}

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
    private readonly target: TargetReader,
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

/** Read chunks `indices` from the target (a couple ahead) and check each against the manifest:
 * SHA-256, and MD5 when `md5` (on `md5Threads` workers); a zero chunk must read as zeros.
 * `result` hears each chunk's verdict in the order the reads finish. */
export async function checkOnTarget(
  target: TargetReader,
  m: Manifest,
  indices: readonly number[],
  opts: { md5: boolean; md5Threads: number; progress?: Progress },
  result: (index: number, ok: boolean) => void,
): Promise<void> {
  const hasher = opts.md5 ? new Md5Hasher(opts.md5Threads) : undefined;
  const ahead = 3;
  const pool = new BufferPool(ahead, m.chunkSize);
  let next = 0;
  let scanned = 0;
  const worker = async () => {
    while (next < indices.length) {
      const i = indices[next++];
      const length = chunkLength(m, i);
      let buffer: ArrayBuffer | null = await pool.acquire();
      try {
        const view = new Uint8Array(buffer, 0, length);
        const n = await target.readAt(chunkOffset(m, i), view);
        const entry = m.chunks[i];
        let ok = n === length;
        if (ok && entry.zero) ok = isAllZero(view);
        else if (ok) {
          ok = createHash("sha256").update(view).digest("hex") === entry.sha256;
          if (ok && hasher) {
            const r = await hasher.md5(buffer, length);
            buffer = r.buffer;
            ok = r.md5 === entry.md5;
          }
        }
        result(i, ok);
        scanned += length;
        opts.progress?.update(scanned);
      } catch (err) {
        buffer = null;
        throw err;
      } finally {
        pool.release(buffer);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: ahead }, worker));
  } finally {
    hasher?.close();
  }
}
