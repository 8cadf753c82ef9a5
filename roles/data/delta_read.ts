// A delta answer off the wire (ChunkFetch.delta): one frame (zstd when the server found that
// smaller) from a server that frames, the bitmap and its blocks as they are from an older one.
// Either way bounded before it is read: never more than a whole chunk's answer, decoded or not.
// Whatever is wrong is a bad chunk, named; the chunk's bytes are patched only from an answer
// that is whole and says exactly which blocks it carries.
import { FRAME_HEAD_BYTES, parseFrameHead } from "../protocol/mod.ts";
import {
  answerLength,
  answerOfFrame,
  applyAnswer,
  bitmapLength,
  blocksOf,
  maxAnswerLength,
} from "./delta.ts";
import { ReceiveError } from "./receive_error.ts";

/** Read exactly `view`'s length into it; resolves to its buffer's new handle (byob). */
export type Fill = (view: Uint8Array) => Promise<ArrayBuffer>;

/** The plain delta answer (bitmap, then blocks) for a chunk of `length` bytes. */
export async function readDeltaAnswer(
  fill: Fill,
  framed: boolean,
  length: number,
  what: string,
  index: number,
): Promise<Uint8Array> {
  const bad = (why: string) =>
    new ReceiveError("bad-chunk", `Cannot verify ${what}: ${why}`, { index });
  if (framed) {
    // Its head bounds the frame before a byte more is read.
    const head = new Uint8Array(await fill(new Uint8Array(FRAME_HEAD_BYTES)));
    const frame = parseFrameHead(head);
    const max = maxAnswerLength(length);
    if (typeof frame === "string") throw bad(`${frame} for an answer of at most ${max}`);
    if (frame.length > max) {
      throw bad(`a frame of ${frame.length} bytes for an answer of at most ${max}`);
    }
    const whole = new Uint8Array(FRAME_HEAD_BYTES + frame.length);
    whole.set(head);
    const got = new Uint8Array(await fill(whole.subarray(FRAME_HEAD_BYTES)));
    try {
      return answerOfFrame(got, length);
    } catch (err) {
      throw bad((err as Error).message);
    }
  }
  // An older server: the bitmap says how many blocks follow.
  const bits = new Uint8Array(await fill(new Uint8Array(bitmapLength(length))));
  let blocks: number[];
  try {
    blocks = blocksOf(bits, length);
  } catch (err) {
    throw bad((err as Error).message);
  }
  const whole = new Uint8Array(answerLength(length, blocks));
  whole.set(bits);
  return new Uint8Array(await fill(whole.subarray(bits.length)));
}

/** Patch `answer`'s blocks into `chunk`; the blocks patched, or a bad chunk naming why. */
export function patchWith(
  chunk: Uint8Array,
  answer: Uint8Array,
  what: string,
  index: number,
): number[] {
  try {
    return applyAnswer(chunk, answer);
  } catch (err) {
    throw new ReceiveError("bad-chunk", `Cannot verify ${what}: ${(err as Error).message}`, {
      index,
    });
  }
}
