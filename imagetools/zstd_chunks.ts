// Chunks stored and sent zstd-compressed (manifest format 3): compress one chunk (kept only when
// it shrinks), decompress one with its length bounded, and a pool of worker threads that
// compresses slicing's chunks in place in their shared memory. node:zlib's zstd, in Deno itself
// (no zstd binary, on the master or on a netbooted PC).
import { constants, zstdCompressSync, zstdDecompressSync, type ZstdOptions } from "node:zlib";
import { WorkerRpc } from "./kit/mod.ts";

/** The level slicing compresses at, chosen by measurement (bench:bytes, BENCHMARKS.md): the
 * lowest level whose chunks stay under 1.05 x partclone | zstd -3 on all three real-tool disks.
 * 1 MiB chunks (scale 1), against 88.6 / 37.0 / 37.7 MB for partclone | zstd -3: level 3 90.2 /
 * 39.8 / 40.3 MB (1.02-1.07 x: the stream keeps context across chunks, ext4's files gain most
 * from it); level 4 the same within 0.3 %; level 5 87.4 / 37.0 / 37.1 MB (0.99-1.00 x); level 6
 * 85.4 / 35.8 / 35.8 MB (0.95-0.97 x) for ~1.3 x level 5's CPU (level 3 is ~0.45 x of it).
 * Slicing is CPU-bound on the compression, so 5, not 6. PCs decompress either at several hundred
 * MB/s on one core, well above 1 Gbit/s. */
export const DEFAULT_ZSTD_LEVEL = 5;
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

/** node:zlib's parameters for a level. */
export function zstdParams(level: number): Record<number, number> {
  return { [constants.ZSTD_c_compressionLevel]: level };
}

/** `bytes` zstd-compressed at `level`, or null when that does not make them smaller (such a
 * chunk is stored raw). */
export function compressChunk(bytes: Uint8Array, level = DEFAULT_ZSTD_LEVEL): Uint8Array | null {
  // The size pledged: the frame's header declares it (decompressAtMost sizes its buffer by it),
  // and zstd sizes its tables for the bytes, not for a stream of unknown length.
  // (Node's option; Deno's types for it lag behind its node:zlib.)
  const options = { params: zstdParams(level), pledgedSrcSize: bytes.length };
  const out = zstdCompressSync(bytes, options as ZstdOptions);
  return out.length < bytes.length ? new Uint8Array(out.buffer, out.byteOffset, out.length) : null;
}

/** The chunk of `length` bytes that `stored` (zstd) holds; a ChunkDecodeError saying why when
 * it is not zstd or decompresses to another length (never more than `length` is made). */
export function decompressChunk(stored: Uint8Array, length: number): Uint8Array {
  const out = decompressAtMost(stored, length);
  if (out.length !== length) {
    throw new ChunkDecodeError(`it decompresses to ${out.length} bytes, expected ${length}`);
  }
  return out;
}

/** What `stored` (zstd) holds, at most `max` bytes of it (a ChunkDecodeError past that, or
 * when it is not zstd): for bytes whose exact length is known only once decoded. */
export function decompressAtMost(stored: Uint8Array, max: number): Uint8Array {
  // One output buffer of exactly the size the frame's header says (bounded by `max`; a header
  // that lies only costs pieces, never more than `max`): node:zlib's default 16 KiB pieces made
  // decompression 1.3-2 x slower, and a buffer larger than the output costs a copy and its
  // pages (a 26 KB delta answer into a 1 MiB buffer: 0.41 ms, into its own size: 0.02 ms).
  const said = zstdContentSize(stored);
  const piece = Math.max(64, said !== undefined && said <= max ? said : max);
  let out: Uint8Array;
  try {
    out = zstdDecompressSync(stored, { maxOutputLength: max, chunkSize: piece });
  } catch (cause) {
    const msg = (cause as Error).message;
    const why = (cause as { code?: string }).code === "ERR_BUFFER_TOO_LARGE"
      ? `it decompresses to more than ${max} bytes`
      : `it is not valid zstd (${msg.replace(/^Zstd decompress error: /, "")})`;
    throw new ChunkDecodeError(why, { cause });
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

const ZSTD_MAGIC = 0xfd2fb528;

/** The content size a zstd frame's header declares, or undefined where it declares none or
 * `frame` does not start with a zstd frame header (RFC 8878, 3.1.1.1). Only a hint: nothing
 * checks it but the decompression itself. */
export function zstdContentSize(frame: Uint8Array): number | undefined {
  if (frame.length < 5) return undefined;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
  if (view.getUint32(0, true) !== ZSTD_MAGIC) return undefined;
  const fhd = frame[4];
  const single = (fhd & 0x20) !== 0;
  const fcsBytes = [single ? 1 : 0, 2, 4, 8][fhd >> 6];
  if (fcsBytes === 0) return undefined;
  const at = 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3];
  if (frame.length < at + fcsBytes) return undefined;
  switch (fcsBytes) {
    case 1:
      return frame[at];
    case 2:
      return view.getUint16(at, true) + 256;
    case 4:
      return view.getUint32(at, true);
    default:
      return Number(view.getBigUint64(at, true));
  }
}

// The worker compresses the chunk where it lies (a view into the slicer's shared memory) and,
// when the result is smaller, copies it into the output slot it was given (page-aligned shared
// memory too, so the slicer writes the chunk file from there through O_DIRECT). The chunk itself
// is only read: the hashing workers can read it at the same time. Nothing is transferred or
// copied between threads but the compressed bytes, once, into the slot.
const WORKER_SOURCE = `
import { constants, zstdCompressSync } from "node:zlib";
self.onmessage = (e) => {
  const { id, buffer, offset, length, into, intoOffset, params } = e.data;
  try {
    const view = new Uint8Array(buffer, offset, length);
    const out = zstdCompressSync(view, { params, pledgedSrcSize: length }); // as compressChunk
    if (out.length < length) {
      new Uint8Array(into, intoOffset, out.length).set(out);
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

  /** Chunks given to the workers and not compressed yet. */
  get queued(): number {
    return this.#workers.reduce((n, w) => n + w.inFlight, 0);
  }

  /** Compress `view` into `into` (both in SharedArrayBuffers, `into` at least as long):
   * resolves to the compressed length now in `into`'s first bytes, or 0 when it did not shrink
   * (`into` is then unchanged). The caller must not change `view` or touch `into` until this
   * settles. */
  async compress(view: Uint8Array, into: Uint8Array): Promise<number> {
    if (
      !(view.buffer instanceof SharedArrayBuffer) || !(into.buffer instanceof SharedArrayBuffer)
    ) {
      throw new TypeError("Cannot compress a chunk on a worker outside shared memory");
    }
    if (into.length < view.length) {
      throw new RangeError(`Cannot compress ${view.length} bytes into ${into.length}`);
    }
    const w = this.#workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    const r = await w.request({
      buffer: view.buffer,
      offset: view.byteOffset,
      length: view.length,
      into: into.buffer,
      intoOffset: into.byteOffset,
      params: zstdParams(this.level),
    });
    return r.stored;
  }

  close() {
    for (const w of this.#workers) w.close();
  }
}
