// Sub-chunk delta: a PC that holds an older version of a chunk fetches only the 4 KiB blocks
// that changed. A month of updates changes pages scattered over many 1 MiB chunks (in the
// issue's measurement 220 of 318 changed chunks held at most four changed 4 KiB blocks), so
// whole chunks would move ~60 x the bytes that changed.
//
// The client sends a digest of each block of its own version (16 bytes per 4 KiB);
// the server compares with its chunk and answers a bitmap of the blocks that differ, then those
// blocks in order. Nothing of this is trusted: the client patches its own bytes and checks the
// whole chunk against the manifest (SHA-256 and MD5) before a byte is written, exactly as a
// whole chunk; a chunk that does not verify is fetched whole at once (a digest that matched
// by chance, a server that lies: either way the whole chunk decides). Pure: no I/O.
//
// A client that asks for frames (x-cascade-framed: 1) gets the answer as one frame
// (roles/protocol/data_plane.ts): zstd-compressed when that makes it smaller. The changed blocks
// compress as the image does: 36.17 -> 21.72 MB in the 4 GiB re-image, which pays on slow ports
// (BENCHMARKS.md, "Re-imaging: delta answers compressed").
import { ChunkDecodeError, compressChunk, decompressAtMost } from "../../imagetools/mod.ts";
import { FRAME_HEAD_BYTES, frameOf, parseFrameHead } from "../protocol/mod.ts";

export const DELTA_BLOCK = 4096;
/** Bytes of each block's digest (blockDigests). */
export const DELTA_DIGEST = 16;
/** zstd level of a framed delta answer: compressed per request, on the serving PC's CPU. */
export const DELTA_ZSTD_LEVEL = 3;

/** Blocks of a chunk of `length` bytes (the last one may be short). */
export function blockCount(length: number): number {
  return Math.ceil(length / DELTA_BLOCK);
}

/** Length of the bitmap that starts a delta answer for a chunk of `length` bytes. */
export function bitmapLength(length: number): number {
  return Math.ceil(blockCount(length) / 8);
}

/** The digest of every 4 KiB block of `bytes`, back to back: four 32-bit multiply-xor lanes
 * over the block's words (each lane a chain of bijections, so a change of any one word always
 * shows). Not a cryptographic hash: only finding changes rests on it, the patched chunk is
 * verified whole, and a delta that does not verify is fetched whole. 0.18 ms a MiB, against
 * 1.8 ms for node:crypto's SHA-1 of each block (the call, not the hashing, was most of it); both
 * ends hash a chunk per delta. Words are read in this machine's byte order: peers of another
 * order would see every block changed and move whole chunks, still right. */
export function blockDigests(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const n = blockCount(bytes.length);
  const out = new Uint32Array(n * 4);
  const whole = Math.floor(bytes.length / DELTA_BLOCK);
  // Whole blocks straight from the bytes when they sit on a 4-byte boundary (pooled buffers
  // do); the short last block (and any unaligned chunk) through a zero-padded copy.
  const aligned = bytes.byteOffset % 4 === 0;
  const words = aligned
    ? new Uint32Array(bytes.buffer, bytes.byteOffset, whole * (DELTA_BLOCK / 4))
    : undefined;
  const pad = new Uint32Array(DELTA_BLOCK / 4);
  const padBytes = new Uint8Array(pad.buffer);
  for (let b = 0; b < n; b++) {
    let src: Uint32Array;
    let base = 0;
    if (words && b < whole) {
      src = words;
      base = b * (DELTA_BLOCK / 4);
    } else {
      padBytes.fill(0);
      padBytes.set(bytes.subarray(b * DELTA_BLOCK, (b + 1) * DELTA_BLOCK));
      src = pad;
    }
    const len = Math.min(DELTA_BLOCK, bytes.length - b * DELTA_BLOCK);
    let h1 = 0x811c9dc5 ^ len, h2 = 0x01000193, h3 = 0x9e3779b9, h4 = 0x85ebca6b;
    for (let i = base; i < base + DELTA_BLOCK / 4; i += 4) {
      h1 = Math.imul(h1 ^ src[i], 0x01000193);
      h2 = Math.imul(h2 ^ src[i + 1], 0x85ebca6b);
      h3 = Math.imul(h3 ^ src[i + 2], 0xc2b2ae35);
      h4 = Math.imul(h4 ^ src[i + 3], 0x27d4eb2f);
    }
    out.set([h1, h2, h3, h4], b * 4);
  }
  return new Uint8Array(out.buffer);
}

/** The server's answer to `theirs` (the client's blockDigests) for `chunk`: the bitmap of
 * blocks that differ (bit b of byte b >> 3, low bit first), then those blocks. */
export function deltaAnswer(chunk: Uint8Array, theirs: Uint8Array): Uint8Array {
  const ours = blockDigests(chunk);
  if (theirs.length !== ours.length) {
    throw new RangeError(
      `Invalid block digests: ${theirs.length} bytes, expected ${ours.length} (${
        blockCount(chunk.length)
      } blocks of ${DELTA_BLOCK} bytes, ${DELTA_DIGEST} bytes each)`,
    );
  }
  const n = blockCount(chunk.length);
  const bitmap = new Uint8Array(bitmapLength(chunk.length));
  const differ: number[] = [];
  for (let b = 0; b < n; b++) {
    const at = b * DELTA_DIGEST;
    let same = true;
    for (let k = 0; k < DELTA_DIGEST && same; k++) same = ours[at + k] === theirs[at + k];
    if (!same) {
      bitmap[b >> 3] |= 1 << (b & 7);
      differ.push(b);
    }
  }
  let length = bitmap.length;
  for (const b of differ) length += blockSpan(chunk.length, b)[1];
  const out = new Uint8Array(length);
  out.set(bitmap);
  let at = bitmap.length;
  for (const b of differ) {
    const [start, len] = blockSpan(chunk.length, b);
    out.set(chunk.subarray(start, start + len), at);
    at += len;
  }
  return out;
}

/** Offset and length of block `b` in a chunk of `length` bytes. */
export function blockSpan(length: number, b: number): [number, number] {
  const start = b * DELTA_BLOCK;
  return [start, Math.min(DELTA_BLOCK, length - start)];
}

/** The blocks a bitmap names, ascending (bits past the chunk's blocks are an error). */
export function blocksOf(bitmap: Uint8Array, length: number): number[] {
  const n = blockCount(length);
  const out: number[] = [];
  for (let b = 0; b < bitmap.length * 8; b++) {
    if (!(bitmap[b >> 3] & (1 << (b & 7)))) continue;
    if (b >= n) throw new RangeError(`Invalid delta bitmap: block ${b} of a ${n}-block chunk`);
    out.push(b);
  }
  return out;
}

/** Bytes of a delta answer that names `blocks` of a chunk of `length` bytes. */
export function answerLength(length: number, blocks: readonly number[]): number {
  let n = bitmapLength(length);
  for (const b of blocks) n += blockSpan(length, b)[1];
  return n;
}

/** Offset and length of each run of adjacent blocks among `blocks` (ascending), in a chunk of
 * `length` bytes: one write per run. */
export function blockRuns(length: number, blocks: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const b of blocks) {
    const [start, len] = blockSpan(length, b);
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === start) last[1] += len;
    else runs.push([start, len]);
  }
  return runs;
}

/** A delta answer as its frame: zstd at DELTA_ZSTD_LEVEL when that is smaller, raw otherwise. */
export function answerFrame(answer: Uint8Array): Uint8Array {
  const packed = compressChunk(answer, DELTA_ZSTD_LEVEL);
  return frameOf(packed !== null, packed ?? answer);
}

/** The most bytes a delta answer for a chunk of `length` bytes can hold (every block differs);
 * a framed answer is at most its head more (a zstd frame goes only when smaller). */
export function maxAnswerLength(length: number): number {
  return bitmapLength(length) + length;
}

/** The delta answer a frame (head and body, whole) holds for a chunk of `length` bytes; a
 * RangeError saying what is wrong when it holds none. */
export function answerOfFrame(frame: Uint8Array, length: number): Uint8Array {
  const head = parseFrameHead(frame.subarray(0, FRAME_HEAD_BYTES));
  const body = frame.subarray(FRAME_HEAD_BYTES);
  if (typeof head === "string") throw new RangeError(`Invalid delta answer: ${head}`);
  if (head.length !== body.length) {
    throw new RangeError(
      `Invalid delta answer: a frame of ${head.length} bytes holds ${body.length}`,
    );
  }
  if (!head.zstd) return body;
  try {
    return decompressAtMost(body, maxAnswerLength(length));
  } catch (err) {
    if (!(err instanceof ChunkDecodeError)) throw err;
    throw new RangeError(`Invalid delta answer: its zstd frame: ${err.message}`);
  }
}

/** Patch the blocks `answer` (bitmap, then those blocks) names into `chunk`, in place; the
 * blocks patched, ascending. A RangeError, with `chunk` untouched, when the answer's length
 * is not what its bitmap names. */
export function applyAnswer(chunk: Uint8Array, answer: Uint8Array): number[] {
  const bits = bitmapLength(chunk.length);
  if (answer.length < bits) {
    throw new RangeError(`Invalid delta answer: ${answer.length} bytes, shorter than its bitmap`);
  }
  const blocks = blocksOf(answer.subarray(0, bits), chunk.length);
  const want = answerLength(chunk.length, blocks);
  if (answer.length !== want) {
    throw new RangeError(
      `Invalid delta answer: ${answer.length} bytes for ${blocks.length} blocks, expected ${want}`,
    );
  }
  let at = bits;
  for (const b of blocks) {
    const [start, len] = blockSpan(chunk.length, b);
    chunk.set(answer.subarray(at, at + len), start);
    at += len;
  }
  return blocks;
}
