// Chunks stored and sent zstd-compressed (manifest format 3): compress one chunk (kept only when
// it shrinks), decompress one with its length bounded, and a pool of worker threads that
// compresses slicing's chunks in place in their shared memory. node:zlib's zstd, in Deno itself
// (no zstd binary, on the master or on a netbooted PC).
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { WorkerRpc } from "./kit/mod.ts";

/** The level slicing compresses at, chosen by measurement (bench:bytes, BENCHMARKS.md): on the
 * three real-tool disks, 1 MiB chunks at level 3 came to 1.02-1.07 x partclone | zstd -3 (the
 * stream keeps context across chunks), at 6 to 0.94-0.97 x, for 20-50 % more slicing time;
 * PCs decompress level 6 at several hundred MB/s on one core, well above 1 Gbit/s. */
export const DEFAULT_ZSTD_LEVEL = 6;
/** zstd's own range of levels (negative "fast" levels are not offered). */
export const MIN_ZSTD_LEVEL = 1;
export const MAX_ZSTD_LEVEL = 19;

/** A stored chunk's bytes do not decompress to the chunk (bad zstd, or the wrong length). */
export class ChunkDecodeError extends Error {
  override name = "ChunkDecodeError";
}

/** Check a level given by a user: a whole number in zstd's range. */
export function checkZstdLevel(level: number, what = "zstd level"): number {
  if (!Number.isInteger(level) || level < MIN_ZSTD_LEVEL || level > MAX_ZSTD_LEVEL) {
    throw new RangeError(
      `Invalid ${what} ${level}: must be a whole number ${MIN_ZSTD_LEVEL}..${MAX_ZSTD_LEVEL}`,
    );
  }
  return level;
}

/** `bytes` zstd-compressed at `level`, or null when that does not make them smaller (such a
 * chunk is stored raw). */
export function compressChunk(bytes: Uint8Array, level = DEFAULT_ZSTD_LEVEL): Uint8Array | null {
  const out = zstdCompressSync(bytes, { params: { [constants.ZSTD_c_compressionLevel]: level } });
  return out.length < bytes.length ? new Uint8Array(out.buffer, out.byteOffset, out.length) : null;
}

/** The chunk of `length` bytes that `stored` (zstd) holds; a ChunkDecodeError saying why when
 * it is not zstd or decompresses to another length (never more than `length` is made). */
export function decompressChunk(stored: Uint8Array, length: number): Uint8Array {
  let out: Uint8Array;
  try {
    // One output buffer of the chunk's size: node:zlib's default of 16 KiB pieces made
    // decompression 1.3-2 x slower (CPU time per MB, bench in BENCHMARKS.md).
    out = zstdDecompressSync(stored, { maxOutputLength: length, chunkSize: Math.max(64, length) });
  } catch (cause) {
    const msg = (cause as Error).message;
    const why = (cause as { code?: string }).code === "ERR_BUFFER_TOO_LARGE"
      ? `it decompresses to more than ${length} bytes`
      : `it is not valid zstd (${msg.replace(/^Zstd decompress error: /, "")})`;
    throw new ChunkDecodeError(why, { cause });
  }
  if (out.length !== length) {
    throw new ChunkDecodeError(`it decompresses to ${out.length} bytes, expected ${length}`);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

// The worker compresses the chunk where it lies (a view into the slicer's shared memory), and
// when the result is smaller writes it over the chunk's first bytes: the slicer then writes the
// chunk file straight from there (page-aligned, so through O_DIRECT), with no copy or transfer.
const WORKER_SOURCE = `
import { constants, zstdCompressSync } from "node:zlib";
self.onmessage = (e) => {
  const { id, buffer, offset, length, level } = e.data;
  try {
    const view = new Uint8Array(buffer, offset, length);
    const out = zstdCompressSync(view, { params: { [constants.ZSTD_c_compressionLevel]: level } });
    if (out.length < length) {
      view.set(out);
      self.postMessage({ id, stored: out.length });
    } else self.postMessage({ id, stored: 0 });
  } catch (err) {
    self.postMessage({ id, error: String(err?.message ?? err) });
  }
};
`;

/** Compresses chunks that lie in a shared memory, on `threads` workers, least busy first. */
export class CompressPool {
  #workers: WorkerRpc<{ stored: number }>[];

  constructor(readonly level: number, threads: number) {
    checkZstdLevel(level);
    if (!Number.isInteger(threads) || threads < 1) {
      throw new RangeError(`Invalid compression threads ${threads}: must be a whole number >= 1`);
    }
    this.#workers = Array.from({ length: threads }, () => new WorkerRpc(WORKER_SOURCE, "compress"));
  }

  /** Compress `view` (in a SharedArrayBuffer) in place: resolves to the compressed length now
   * in its first bytes, or 0 when it did not shrink (the view is then unchanged). The caller
   * must not touch the view until this settles. */
  async compress(view: Uint8Array): Promise<number> {
    if (!(view.buffer instanceof SharedArrayBuffer)) {
      throw new TypeError("Cannot compress a chunk in place outside shared memory");
    }
    const w = this.#workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    const r = await w.request({
      buffer: view.buffer,
      offset: view.byteOffset,
      length: view.length,
      level: this.level,
    });
    return r.stored;
  }

  close() {
    for (const w of this.#workers) w.close();
  }
}
