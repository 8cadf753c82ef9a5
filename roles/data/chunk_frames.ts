// The client's side of framed chunks (roles/protocol/data_plane.ts), without I/O: whether a
// frame head can be the chunk's, and a zstd frame decoded into the chunk's buffer (bounded to
// the chunk's length), hashed, its compressed bytes kept for a relay to send on.
import { createHash } from "node:crypto";
import { ChunkDecodeError, decompressChunk } from "../../imagetools/mod.ts";
import { parseFrameHead } from "../protocol/mod.ts";
import type { Received } from "./chunk_fetch.ts";

/** The frame `head` announces for a chunk of `expected` bytes, or why it cannot be that chunk:
 * a raw frame holds exactly the chunk, a zstd one 1..expected bytes (stored only if smaller). */
export function frameFor(
  head: Uint8Array,
  expected: number,
): { zstd: boolean; length: number } | string {
  const frame = parseFrameHead(head);
  if (typeof frame === "string") return frame;
  const fits = frame.zstd
    ? frame.length >= 1 && frame.length <= expected
    : frame.length === expected;
  if (fits) return frame;
  return `a ${
    frame.zstd ? "zstd" : "raw"
  } frame of ${frame.length} bytes for a chunk of ${expected}`;
}

/** Decode the zstd frame of `length` bytes at the start of `buffer` into the chunk's `expected`
 * bytes in its place. Bad zstd is not an error here but a Received saying so (`bad`): the
 * frame was read whole, so a stream goes on with the next chunk. */
export function decodeZstdFrame(buffer: ArrayBuffer, length: number, expected: number): Received {
  const stored = new Uint8Array(buffer, 0, length).slice();
  let plain: Uint8Array;
  try {
    plain = decompressChunk(stored, expected);
  } catch (err) {
    if (!(err instanceof ChunkDecodeError)) throw err;
    return { buffer, sha256: "", bad: `its zstd frame: ${err.message}` };
  }
  new Uint8Array(buffer, 0, expected).set(plain);
  return { buffer, sha256: createHash("sha256").update(plain).digest("hex"), stored };
}
