// Cut-through relaying, end to end: a relay sends on the bytes of a chunk it is still receiving
// (over a real socket to the downstream), the last byte only once it verified the chunk; a chunk
// that fails at the relay cuts the downstream's response, which is never written and is fetched
// again. The relay's upstream is a chunk app whose response is held at set bytes until the test
// lets it go on (no timing: each step waits for what it needs to see).
import assert from "node:assert/strict";
import { compressibleImage } from "../../imagetools/testkit.ts";
import { FRAME_HEAD_BYTES, FRAMED_HEADER } from "../protocol/mod.ts";
import { createChunkApp, startChunkServer } from "./chunk_server.ts";
import type { ChunkSource } from "./chunk_source.ts";
import type { FetchLike } from "./chunk_fetch.ts";
import { Receiver } from "./receiver.ts";
import { appFetch, memorySource, memoryTarget, randomImage } from "./testkit.ts";

const CHUNK = 64 * 1024;

/** `body` re-sent as a byte stream; `seen(total)` is told of every piece before it goes on, and
 * the piece that would pass byte `stop.at` is split there and waits for `stop.go` first. */
function relayBody(
  body: ReadableStream<Uint8Array>,
  o: { stop?: { at: number; go: Promise<void> }; seen?: (total: number) => void },
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let total = 0;
  let stop = o.stop;
  return new ReadableStream({
    type: "bytes",
    async pull(c: ReadableByteStreamController) {
      const { value, done } = await reader.read();
      if (done) {
        c.close();
        c.byobRequest?.respond(0);
        return;
      }
      let piece = value.slice();
      if (stop && total + piece.length > stop.at) {
        const before = piece.subarray(0, stop.at - total);
        if (before.length > 0) {
          total += before.length;
          o.seen?.(total);
          c.enqueue(before.slice());
        }
        piece = piece.slice(before.length);
        await stop.go;
        stop = undefined;
      }
      total += piece.length;
      o.seen?.(total);
      c.enqueue(piece);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

/** A fetch whose first response is held at byte `at` until `go` resolves. */
function heldOnce(inner: FetchLike, at: number, go: Promise<void>): FetchLike {
  let first = true;
  return async (url, init) => {
    const res = await inner(url, init);
    if (!first || !res.body) return res;
    first = false;
    return new Response(relayBody(res.body, { stop: { at, go } }), res);
  };
}

/** A fetch that resolves `reached` once `bytes` of its response bodies came, in all. */
function watched(bytes: number) {
  const reached = Promise.withResolvers<void>();
  let total = 0;
  const fetchLike: FetchLike = async (url, init) => {
    const res = await fetch(url, init);
    if (!res.body) return res;
    const before = total;
    const body = relayBody(res.body, {
      seen: (n) => {
        total = before + n;
        if (total >= bytes) reached.resolve();
      },
    });
    return new Response(body, res);
  };
  return { fetch: fetchLike, reached: reached.promise };
}

/** A relay (served on loopback) fed by `upstream` through `relayFetch`, and a downstream
 * fetching from it through `downFetch`. */
async function chain(upstream: ChunkSource, relayFetch: FetchLike, downFetch: FetchLike) {
  const size = upstream.manifest.size;
  const relayTarget = memoryTarget(size);
  const downTarget = memoryTarget(size);
  const relayRx = new Receiver({
    manifestBytes: upstream.manifestBytes,
    target: relayTarget,
    fetch: relayFetch,
    md5Threads: 0,
  });
  const relay = await startChunkServer({ source: relayRx, hostname: "127.0.0.1", waitMs: 10_000 });
  // A downstream has asked before: the relay keeps the chunks in flight from then on (what the
  // downstream asks first could otherwise reach it after the relay's chunk 0 began).
  await relayRx.readLive(1, { waitMs: 1 }).catch(() => {});
  const downLog: string[] = [];
  const down = new Receiver({
    manifestBytes: upstream.manifestBytes,
    target: downTarget,
    fetch: downFetch,
    md5Threads: 0,
    log: (event) => downLog.push(event),
  });
  return { relayRx, relay, down, relayTarget, downTarget, downLog };
}

for (const zstd of [false, true]) {
  const kind = zstd ? "zstd" : "raw";
  Deno.test(`cut-through (${kind} chunks): the downstream gets a chunk's first bytes before the relay has it whole, and ends byte-identical`, async () => {
    const image = zstd ? compressibleImage(5 * CHUNK + 700, 7) : randomImage(5 * CHUNK + 700);
    const src = memorySource(image, CHUNK, "games.img", zstd ? { zstd: 3 } : {});
    const first = await src.readStored(0);
    assert.equal(first.zstd, zstd);
    const half = Math.floor(first.bytes.length / 2);
    // The upstream's stream stops halfway through chunk 0's frame.
    const go = Promise.withResolvers<void>();
    const upFetch = heldOnce(appFetch(createChunkApp(src)), FRAME_HEAD_BYTES + half, go.promise);
    const down = watched(FRAME_HEAD_BYTES + half);
    const c = await chain(src, upFetch, down.fetch);
    try {
      const downDone = c.down.fetchFrom(c.relay.url);
      const relayDone = c.relayRx.fetchFrom("http://upstream.test");
      // The downstream has the first half of chunk 0's frame, while the relay has only that.
      await down.reached;
      assert.equal(c.relayRx.has(0), false);
      assert.equal(c.relayTarget.writes, 0);
      assert.equal(c.downTarget.writes, 0);
      go.resolve();
      await relayDone;
      await downDone;
      assert.deepEqual(c.relayTarget.bytes, image);
      assert.deepEqual(c.downTarget.bytes, image);
      // The relay's chunks went on as they came: compressed ones compressed.
      let stored = 0;
      for (let i = 0; i < src.manifest.chunks.length; i++) {
        stored += (await src.readStored(i)).bytes.length;
      }
      assert.equal(c.down.stats().bytesReceived, stored);
      assert.equal(c.down.stats().bytesRefetched, 0);
      assert.equal(c.down.stats().badChunks, 0);
    } finally {
      await c.relay.close();
    }
  });
}

Deno.test("cut-through: a chunk that fails at the relay cuts the downstream's response; it is not written, fetched again, and both end byte-identical", async () => {
  const image = randomImage(5 * CHUNK + 700);
  const src = memorySource(image, CHUNK, "games.img");
  // The upstream sends chunk 1 with its last byte flipped, the first time it is asked for.
  let flipped = false;
  const corrupt: ChunkSource = {
    ...src,
    has: (i) => src.has(i),
    heldCount: () => src.heldCount(),
    read: (i) => src.read(i),
    async readStored(i) {
      const s = await src.readStored(i);
      if (i !== 1 || flipped) return s;
      flipped = true;
      const bytes = s.bytes.slice();
      bytes[bytes.length - 1] ^= 0xff;
      return { zstd: false, bytes };
    },
  };
  // The upstream's first stream stops halfway through chunk 1's frame.
  const at = 2 * FRAME_HEAD_BYTES + CHUNK + CHUNK / 2;
  const go = Promise.withResolvers<void>();
  const upFetch = heldOnce(appFetch(createChunkApp(corrupt)), at, go.promise);
  const down = watched(at);
  const c = await chain(src, upFetch, down.fetch);
  try {
    const downDone = c.down.fetchFrom(c.relay.url);
    const relayFirst = c.relayRx.fetchFrom("http://upstream.test");
    // The downstream has the first half of chunk 1 as the relay had it, before its bad end came.
    await down.reached;
    assert.equal(c.relayRx.has(1), false);
    go.resolve();
    const err = await relayFirst.then(
      () => assert.fail("the relay should refuse chunk 1"),
      (e) => e,
    );
    assert.equal(err.reason, "bad-chunk");
    assert.equal(err.index, 1);
    assert.equal(c.relayRx.stats().badChunks, 1);
    // The relay fetches chunk 1 again (good this time); the downstream waits for it.
    await c.relayRx.fetchFrom("http://upstream.test");
    await downDone;
    assert.deepEqual(c.relayTarget.bytes, image);
    assert.deepEqual(c.downTarget.bytes, image);
    // The downstream never had the bad chunk whole: nothing failed its hashes, nothing bad was
    // written; it fetched chunk 1 again after its half.
    assert.equal(c.down.stats().badChunks, 0);
    assert.equal(c.down.stats().bytesRefetched, CHUNK);
    // The rest came in a stream again (from chunk 1 on), not one request per chunk.
    assert.deepEqual(c.downLog.filter((e) => e.startsWith("stream.")), ["stream.cut"]);
  } finally {
    await c.relay.close();
  }
});

Deno.test("cut-through: a chunk app serves a live chunk's frame as it comes to a framed request", async () => {
  const image = randomImage(2 * CHUNK);
  const src = memorySource(image, CHUNK, "games.img");
  const go = Promise.withResolvers<void>();
  // Held at a quarter of chunk 0: past the least piece a relay sends on (a sixteenth).
  const part = CHUNK / 4;
  const upFetch = heldOnce(appFetch(createChunkApp(src)), FRAME_HEAD_BYTES + part, go.promise);
  const c = await chain(src, upFetch, (url, init) => fetch(url, init));
  try {
    const relayDone = c.relayRx.fetchFrom("http://upstream.test");
    const res = await fetch(`${c.relay.url}/v1/chunks/0`, { headers: { [FRAMED_HEADER]: "1" } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-length"), String(FRAME_HEAD_BYTES + CHUNK));
    const reader = res.body!.getReader();
    let got = new Uint8Array(0);
    while (got.length < FRAME_HEAD_BYTES + part) {
      const { value } = await reader.read();
      got = new Uint8Array([...got, ...value!]);
    }
    assert.equal(c.relayRx.has(0), false);
    assert.deepEqual(got.subarray(FRAME_HEAD_BYTES), image.subarray(0, part));
    go.resolve();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      got = new Uint8Array([...got, ...value]);
    }
    assert.deepEqual(got.subarray(FRAME_HEAD_BYTES), image.subarray(0, CHUNK));
    await relayDone;
  } finally {
    await c.relay.close();
  }
});
