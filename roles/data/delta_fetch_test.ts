import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { zstdCompressSync } from "node:zlib";
import { Hono } from "hono";
import { compressibleImage } from "../../imagetools/testkit.ts";
import { FRAMED_HEADER, frameHead, frameOf, IMAGE_HEADER } from "../protocol/mod.ts";
import { ChunkFetch, newInFlight } from "./chunk_fetch.ts";
import { createChunkApp } from "./chunk_server.ts";
import { blockDigests, DELTA_BLOCK, deltaAnswer } from "./delta.ts";
import { ReceiveError } from "./receive_error.ts";
import { appFetch, memorySource } from "./testkit.ts";

// ChunkFetch.delta against the real chunk server (a framed, compressed answer), an older one
// (the answer as it is) and servers that lie about their frame.
const CHUNK = 64 * 1024;
const image = compressibleImage(3 * CHUNK, 7);
const src = memorySource(image, CHUNK, "delta.img");
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
/** Chunk 1 as an older version holds it: blocks 2, 3 and 9 changed. */
function older(): Uint8Array {
  const mine = image.slice(CHUNK, 2 * CHUNK);
  mine.fill(0, 2 * DELTA_BLOCK, 4 * DELTA_BLOCK);
  mine[9 * DELTA_BLOCK + 5] ^= 0xff;
  return mine;
}

function fetcher(fetch: (url: string, init: { signal: AbortSignal }) => Promise<Response>) {
  let got = 0;
  const c = new ChunkFetch({
    manifest: src.manifest,
    imageId: src.imageId,
    base: "http://peer:8081/",
    fetch,
    cancelled: () => false,
    onBytes: (_i, n) => got += n,
  });
  const run = async () => {
    const mine = older();
    const buffer = mine.buffer.slice(mine.byteOffset, mine.byteOffset + mine.length);
    const r = await c.delta(1, buffer as ArrayBuffer, newInFlight(2000));
    return { r, bytes: new Uint8Array(r.buffer, 0, CHUNK), got };
  };
  return run;
}

/** A server that answers every delta with `body` (framed or not). */
function answering(body: Uint8Array, framed: boolean) {
  const app = new Hono();
  app.post("/v1/delta/:index", () =>
    new Response(body as Uint8Array<ArrayBuffer>, {
      headers: { [IMAGE_HEADER]: src.imageId, ...(framed ? { [FRAMED_HEADER]: "1" } : {}) },
    }));
  return appFetch(app);
}

async function refused(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => assert.fail("should fail"), (e) => e);
  assert.ok(err instanceof ReceiveError, String(err));
  assert.equal(err.reason, "bad-chunk");
  return err.message;
}

Deno.test("ChunkFetch.delta: the changed blocks come compressed and patch the chunk exactly", async () => {
  const { r, bytes, got } = await fetcher(appFetch(createChunkApp(src)))();
  assert.deepEqual(bytes, image.subarray(CHUNK, 2 * CHUNK));
  assert.equal(r.sha256, src.manifest.chunks[1].sha256);
  assert.deepEqual(r.patched, [2, 3, 9]);
  // The raw answer is its 2-byte bitmap and three blocks; the wire carried less.
  const raw = 2 + 3 * DELTA_BLOCK;
  assert.ok(got < raw / 2, `${got} bytes on the wire for a ${raw}-byte answer`);
});

Deno.test("ChunkFetch.delta: an older server's unframed answer patches the chunk too", async () => {
  const answer = deltaAnswer(image.subarray(CHUNK, 2 * CHUNK), blockDigests(older()));
  const { r, bytes, got } = await fetcher(answering(answer, false))();
  assert.equal(sha(bytes), src.manifest.chunks[1].sha256);
  assert.deepEqual(r.patched, [2, 3, 9]);
  assert.equal(got, answer.length);
});

Deno.test("ChunkFetch.delta: a frame that lies is a bad chunk, named, before a byte is patched", async () => {
  const answer = deltaAnswer(image.subarray(CHUNK, 2 * CHUNK), blockDigests(older()));
  const url = 'the delta of chunk 1 of "delta.img" from http://peer:8081/v1/delta/1';
  // A head that announces more than any answer can hold: refused on the head alone.
  assert.equal(
    await refused(fetcher(answering(frameHead(true, 1 << 30), true))()),
    `Cannot verify ${url}: a frame of 1073741824 bytes for an answer of at most 65538`,
  );
  // zstd that would grow past a whole answer (a bomb): never decoded past its bound.
  const bomb = zstdCompressSync(new Uint8Array(1 << 20));
  assert.match(
    await refused(fetcher(answering(frameOf(true, bomb), true))()),
    /its zstd frame: it decompresses to more than 65538 bytes$/,
  );
  // Not zstd, and a frame shorter than its head says.
  assert.match(
    await refused(fetcher(answering(frameOf(true, answer.subarray(0, 100)), true))()),
    /its zstd frame: it is not valid zstd/,
  );
  const short = frameOf(false, answer).subarray(0, 50);
  const cut = await fetcher(answering(short, true))().then(() => assert.fail(), (e) => e);
  assert.equal(cut.reason, "server-gone");
  // A raw answer whose bitmap names blocks it does not carry.
  const lying = answer.slice(0, answer.length - DELTA_BLOCK);
  assert.equal(
    await refused(fetcher(answering(frameOf(false, lying), true))()),
    `Cannot verify ${url}: Invalid delta answer: ${lying.length} bytes for 3 blocks, expected ${answer.length}`,
  );
});
