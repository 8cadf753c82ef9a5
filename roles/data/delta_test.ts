import assert from "node:assert/strict";
import { createChunkApp } from "./chunk_server.ts";
import { compressibleImage } from "../../imagetools/testkit.ts";
import {
  answerFrame,
  answerLength,
  answerOfFrame,
  applyAnswer,
  blockCount,
  blockDigests,
  blockRuns,
  blocksOf,
  DELTA_BLOCK,
  DELTA_DIGEST,
  deltaAnswer,
  maxAnswerLength,
} from "./delta.ts";
import { frameOf } from "../protocol/mod.ts";
import { memorySource, randomImage } from "./testkit.ts";

/** `mine` patched with a delta answer, as the client does (applyAnswer on a copy). */
function patch(mine: Uint8Array, answer: Uint8Array): Uint8Array {
  const out = mine.slice();
  applyAnswer(out, answer);
  return out;
}

Deno.test("delta: only the changed 4 KiB blocks travel, and they patch the old version exactly", () => {
  // 10 blocks, the last one 1000 bytes.
  const chunk = randomImage(9 * DELTA_BLOCK + 1000);
  const old = chunk.slice();
  old[3 * DELTA_BLOCK + 17] ^= 1;
  old.fill(0, 7 * DELTA_BLOCK, 8 * DELTA_BLOCK);
  old[9 * DELTA_BLOCK + 999] ^= 0x80; // the short last block
  assert.equal(blockCount(chunk.length), 10);
  const theirs = blockDigests(old);
  assert.equal(theirs.length, 10 * DELTA_DIGEST);
  const answer = deltaAnswer(chunk, theirs);
  assert.deepEqual([...answer.subarray(0, 2)], [0b1000_1000, 0b10]);
  assert.deepEqual(blocksOf(answer.subarray(0, 2), chunk.length), [3, 7, 9]);
  assert.equal(answer.length, 2 + 2 * DELTA_BLOCK + 1000);
  assert.equal(answerLength(chunk.length, [3, 7, 9]), answer.length);
  assert.deepEqual(patch(old, answer), chunk);
  // Nothing changed: the bitmap alone; everything changed: every block.
  assert.deepEqual(deltaAnswer(chunk, blockDigests(chunk)), new Uint8Array(2));
  const all = deltaAnswer(chunk, blockDigests(new Uint8Array(chunk.length)));
  assert.equal(all.length, 2 + chunk.length);
  assert.deepEqual(patch(new Uint8Array(chunk.length), all), chunk);
});

Deno.test("delta: digests of the wrong length and bitmap bits past the chunk are refused", () => {
  const chunk = randomImage(3 * DELTA_BLOCK);
  assert.throws(() => deltaAnswer(chunk, new Uint8Array(2 * DELTA_DIGEST)), {
    message: "Invalid block digests: 32 bytes, expected 48 (3 blocks of 4096 bytes, 16 bytes each)",
  });
  assert.throws(() => blocksOf(new Uint8Array([0b1001]), chunk.length), {
    message: "Invalid delta bitmap: block 3 of a 3-block chunk",
  });
});

Deno.test("POST /v1/delta/:index answers the differing blocks; a bad index or body is a 400", async () => {
  const K64 = 64 * 1024;
  const image = randomImage(3 * K64 + 5000);
  const app = createChunkApp(memorySource(image, K64, "d.img"));
  const mine = image.slice(K64, 2 * K64);
  mine[5 * DELTA_BLOCK] ^= 1;
  const post = (path: string, body: Uint8Array) =>
    app.request(path, { method: "POST", body: body as Uint8Array<ArrayBuffer> });
  const res = await post("/v1/delta/1", blockDigests(mine));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-length"), String(2 + DELTA_BLOCK));
  const body = new Uint8Array(await res.arrayBuffer());
  assert.deepEqual([...body.subarray(0, 2)], [0b10_0000, 0]);
  assert.deepEqual(body.subarray(2), image.subarray(K64 + 5 * DELTA_BLOCK, K64 + 6 * DELTA_BLOCK));
  // Asked for a frame: one frame, raw here (random blocks do not compress), said in a header.
  const framed = await app.request("/v1/delta/1", {
    method: "POST",
    body: blockDigests(mine) as Uint8Array<ArrayBuffer>,
    headers: { "x-cascade-framed": "1" },
  });
  assert.equal(framed.headers.get("x-cascade-framed"), "1");
  const frame = new Uint8Array(await framed.arrayBuffer());
  assert.deepEqual(frame, frameOf(false, body));
  // The short last chunk: 5000 bytes, 2 blocks.
  const last = await post("/v1/delta/3", blockDigests(new Uint8Array(5000)));
  assert.deepEqual(new Uint8Array(await last.arrayBuffer()).subarray(1), image.subarray(3 * K64));

  const bad = await post("/v1/delta/4", blockDigests(mine));
  assert.equal(bad.status, 400);
  assert.deepEqual(await bad.json(), {
    error: 'Invalid chunk index "4": image "d.img" has chunks 0..3',
  });
  const short = await post("/v1/delta/1", new Uint8Array(16));
  assert.equal(short.status, 400);
  assert.deepEqual(await short.json(), {
    error: 'Invalid delta request for chunk 1 of "d.img": 16 bytes of block digests, expected 256',
  });
});

Deno.test("blockRuns joins adjacent patched blocks into one write each, the short last one too", () => {
  const length = 5 * DELTA_BLOCK + 100; // six blocks, the last 100 bytes
  assert.deepEqual(blockRuns(length, []), []);
  assert.deepEqual(blockRuns(length, [0, 1, 3, 5]), [
    [0, 2 * DELTA_BLOCK],
    [3 * DELTA_BLOCK, DELTA_BLOCK],
    [5 * DELTA_BLOCK, 100],
  ]);
  assert.deepEqual(blockRuns(length, [4, 5]), [[4 * DELTA_BLOCK, DELTA_BLOCK + 100]]);
});

Deno.test("delta answers as frames: zstd when smaller, raw otherwise, and read back exactly", () => {
  const chunk = compressibleImage(16 * DELTA_BLOCK, 3);
  const old = chunk.slice();
  old.fill(0, 4 * DELTA_BLOCK, 8 * DELTA_BLOCK);
  const answer = deltaAnswer(chunk, blockDigests(old));
  const frame = answerFrame(answer);
  assert.equal(frame[0], 1, "a zstd frame");
  assert.ok(frame.length < answer.length / 2, `${frame.length} of ${answer.length}`);
  assert.deepEqual(answerOfFrame(frame, chunk.length), answer);
  const patched = old.slice();
  assert.deepEqual(applyAnswer(patched, answerOfFrame(frame, chunk.length)), [4, 5, 6, 7]);
  assert.deepEqual(patched, chunk);
  // Random blocks do not compress: the answer goes raw.
  const noise = randomImage(4 * DELTA_BLOCK);
  const all = deltaAnswer(noise, blockDigests(new Uint8Array(noise.length)));
  const rawFrame = answerFrame(all);
  assert.equal(rawFrame[0], 0);
  assert.equal(rawFrame.length, 5 + all.length);
  assert.equal(maxAnswerLength(noise.length), all.length);
  assert.deepEqual(answerOfFrame(rawFrame, noise.length), all);
});

Deno.test("applyAnswer refuses an answer its bitmap does not describe, and leaves the chunk", () => {
  const chunk = randomImage(3 * DELTA_BLOCK);
  const before = chunk.slice();
  assert.throws(() => applyAnswer(chunk, new Uint8Array([0b11, 1, 2])), {
    message: "Invalid delta answer: 3 bytes for 2 blocks, expected 8193",
  });
  assert.throws(() => applyAnswer(chunk, new Uint8Array(0)), {
    message: "Invalid delta answer: 0 bytes, shorter than its bitmap",
  });
  assert.throws(() => answerOfFrame(new Uint8Array([0, 0, 0, 0, 9, 1]), chunk.length), {
    message: "Invalid delta answer: a frame of 9 bytes holds 1",
  });
  assert.deepEqual(chunk, before);
});
