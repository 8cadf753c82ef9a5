// Sub-chunk delta: a PC that holds an older version of a chunk fetches only the 4 KiB blocks
// that changed. A month of updates changes pages scattered over many 1 MiB chunks (in the
// issue's measurement 220 of 318 changed chunks held at most four changed 4 KiB blocks), so
// whole chunks would move ~60 x the bytes that changed.
//
// The client sends a digest of each block of its own version (16 bytes of SHA-1 per 4 KiB);
// the server compares with its chunk and answers a bitmap of the blocks that differ, then those
// blocks in order. Nothing of this is trusted: the client patches its own bytes and checks the
// whole chunk against the manifest (SHA-256 and MD5) before a byte is written, exactly as a
// whole chunk; a chunk that does not verify is fetched whole at once (a digest that matched
// by chance, a server that lies: either way the whole chunk decides). Pure: no I/O.
import { createHash } from "node:crypto";

export const DELTA_BLOCK = 4096;
/** Bytes of each block's digest: a SHA-1 prefix. Only finding changes rests on it (the chunk is
 * verified whole), and per 4 KiB block node:crypto's SHA-1 costs 7 us against SHA-256's 21
 * (measured: the call, not the hashing, is most of it); both ends hash a chunk per delta. */
export const DELTA_DIGEST = 16;

/** Blocks of a chunk of `length` bytes (the last one may be short). */
export function blockCount(length: number): number {
  return Math.ceil(length / DELTA_BLOCK);
}

/** Length of the bitmap that starts a delta answer for a chunk of `length` bytes. */
export function bitmapLength(length: number): number {
  return Math.ceil(blockCount(length) / 8);
}

/** The digest of every 4 KiB block of `bytes`, back to back. */
export function blockDigests(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const n = blockCount(bytes.length);
  const out = new Uint8Array(n * DELTA_DIGEST);
  for (let b = 0; b < n; b++) {
    const block = bytes.subarray(b * DELTA_BLOCK, (b + 1) * DELTA_BLOCK);
    const d = createHash("sha1").update(block).digest();
    out.set(d.subarray(0, DELTA_DIGEST), b * DELTA_DIGEST);
  }
  return out;
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
