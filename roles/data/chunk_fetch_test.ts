import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Hono } from "hono";
import { chunkLength } from "../../imagetools/mod.ts";
import { IMAGE_HEADER } from "../protocol/mod.ts";
import { BufferPool } from "./buffer_pool.ts";
import {
  ChunkFetch,
  type ChunkFetchOptions,
  FetchCancelled,
  newInFlight,
  watchIdle,
} from "./chunk_fetch.ts";
import { createChunkApp } from "./chunk_server.ts";
import { ReceiveError } from "./receive_error.ts";
import { appFetch, memorySource, randomImage } from "./testkit.ts";

const CHUNK = 4096;
// 8 chunks, the last short; chunk 3 is zeros.
const image = randomImage(7 * CHUNK + 100, [[3 * CHUNK, 4 * CHUNK]]);
const src = memorySource(image, CHUNK, "fetch.img");
const m = src.manifest;
const BASE = "http://peer:8081/";
const bytesOf = (i: number) => image.subarray(i * CHUNK, i * CHUNK + chunkLength(m, i));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function client(fetch: ChunkFetchOptions["fetch"], extra: Partial<ChunkFetchOptions> = {}) {
  const bytes = new Map<number, number>();
  const touched: number[] = [];
  const c = new ChunkFetch({
    manifest: m,
    imageId: src.imageId,
    base: BASE,
    fetch,
    cancelled: () => false,
    onBytes: (i, n) => bytes.set(i, (bytes.get(i) ?? 0) + n),
    onTouched: (i) => touched.push(i),
    ...extra,
  });
  return { c, bytes, touched };
}

/** A fetch answering every URL with `make()`, recording the URLs asked for. */
function fixed(make: () => Response) {
  const urls: string[] = [];
  return {
    urls,
    fetch: appFetch({
      request: (url: string) => {
        urls.push(url);
        return make();
      },
    }),
  };
}

async function failure(p: Promise<unknown>): Promise<ReceiveError> {
  const err = await p.then(() => assert.fail("should fail"), (e) => e);
  assert.ok(err instanceof ReceiveError, String(err));
  return err;
}

Deno.test("ChunkFetch.chunk reads one chunk into the given buffer with its SHA-256", async () => {
  const { c, bytes, touched } = client(appFetch(createChunkApp(src)));
  const buffer = new ArrayBuffer(CHUNK);
  const got = await c.chunk(7, buffer, newInFlight(1000));
  assert.deepEqual(new Uint8Array(got.buffer, 0, 100), bytesOf(7));
  assert.equal(got.sha256, m.chunks[7].sha256);
  assert.deepEqual([...bytes], [[7, 100]]);
  assert.deepEqual(touched, [7]);
});

Deno.test("ChunkFetch.run streams a run, handing on each chunk whole and in order", async () => {
  const seen: string[] = [];
  const { c, bytes } = client(appFetch(createChunkApp(src)));
  const pool = new BufferPool(2, CHUNK);
  const got: number[] = [];
  await c.run([1, 2, 4, 5], pool, newInFlight(1000), (i, r) => {
    got.push(i);
    seen.push(r.sha256);
    assert.equal(r.sha256, sha(bytesOf(i)));
    pool.release(r.buffer);
  });
  assert.deepEqual(got, [1, 2, 4, 5]);
  assert.deepEqual(seen, [1, 2, 4, 5].map((i) => m.chunks[i].sha256));
  assert.deepEqual([...bytes.keys()], [1, 2, 4, 5]);
});

Deno.test("ChunkFetch asks for the data plane's URLs", async () => {
  const f = fixed(() => new Response(null, { status: 404 }));
  const { c } = client(f.fetch);
  await failure(c.chunk(2, new ArrayBuffer(CHUNK), newInFlight(1000)));
  await failure(c.run([4, 5, 6], new BufferPool(1, CHUNK), newInFlight(1000), () => {}));
  assert.deepEqual(f.urls, [
    "http://peer:8081/v1/chunks/2",
    "http://peer:8081/v1/stream?from=4&to=7",
  ]);
});

Deno.test("ChunkFetch: an HTTP error is http-<status>; the server's words are kept apart, for both kinds", async () => {
  const f = fixed(() => new Response(`{"error":"busy"}`, { status: 503 }));
  const { c } = client(f.fetch);
  const one = await failure(c.chunk(2, new ArrayBuffer(CHUNK), newInFlight(1000)));
  assert.equal(one.reason, "http-503");
  assert.equal(one.index, 2);
  assert.equal(
    one.message,
    `Cannot fetch chunk 2 of "fetch.img" from http://peer:8081/v1/chunks/2: HTTP 503`,
  );
  assert.equal(one.remote, `{"error":"busy"}`);
  const run = await failure(c.run([4, 5], new BufferPool(1, CHUNK), newInFlight(1000), () => {}));
  assert.equal(run.reason, "http-503");
  assert.equal(run.index, undefined);
  assert.equal(
    run.message,
    `Cannot fetch http://peer:8081/v1/stream?from=4&to=6: HTTP 503`,
  );
});

Deno.test("ChunkFetch refuses a server that names another image, for both kinds", async () => {
  const other = "f".repeat(64);
  const f = fixed(() => new Response(bytesOf(2).slice(), { headers: { [IMAGE_HEADER]: other } }));
  const { c } = client(f.fetch);
  const one = await failure(c.chunk(2, new ArrayBuffer(CHUNK), newInFlight(1000)));
  assert.equal(one.reason, "wrong-image");
  assert.equal(
    one.message,
    `Cannot fetch chunk 2 of "fetch.img" from http://peer:8081/v1/chunks/2: the server serves image "${other}", not "${src.imageId}"`,
  );
  const run = await failure(c.run([2], new BufferPool(1, CHUNK), newInFlight(1000), () => {}));
  assert.equal(run.reason, "wrong-image");
});

Deno.test("ChunkFetch.chunk: a body of another length is a bad chunk; a cut one is server-gone", async () => {
  const longer = new Uint8Array(CHUNK + 1);
  const cases: [string, () => Response, string, string][] = [
    [
      "content-length",
      () => new Response(longer.slice(0, 10), { headers: { "content-length": "10" } }),
      "bad-chunk",
      `Cannot verify chunk 2 of "fetch.img" from http://peer:8081/v1/chunks/2: the server sends 10 bytes, expected 4096`,
    ],
    [
      "longer body",
      () => new Response(new Blob([longer]).stream()),
      "bad-chunk",
      `Cannot verify chunk 2 of "fetch.img" from http://peer:8081/v1/chunks/2: the server sends more than 4096 bytes`,
    ],
    [
      "short body",
      () => new Response(new Blob([longer.subarray(0, 100)]).stream()),
      "server-gone",
      `Cannot fetch chunk 2 of "fetch.img" from http://peer:8081/v1/chunks/2: the response ended after 100 of 4096 bytes`,
    ],
  ];
  for (const [what, make, reason, message] of cases) {
    const { c } = client(fixed(make).fetch);
    const err = await failure(c.chunk(2, new ArrayBuffer(CHUNK), newInFlight(1000)));
    assert.equal(err.reason, reason, what);
    assert.equal(err.message, message, what);
    assert.equal(err.index, 2, what);
  }
});

/** A response that sends `first` bytes and then nothing until the request is aborted. */
function stalling(first: number) {
  return () =>
    new Response(
      new ReadableStream({
        start(ctl) {
          ctl.enqueue(new Uint8Array(first));
        },
      }),
    );
}

Deno.test("ChunkFetch: silence is a timeout, naming how far the chunk came", async () => {
  const { c } = client(fixed(stalling(1000)).fetch);
  const req = newInFlight(50);
  setTimeout(() => {
    req.timedOut = true;
    req.ctl.abort();
  }, 20);
  const err = await failure(c.run([4, 5], new BufferPool(1, CHUNK), req, () => {}));
  assert.equal(err.reason, "timeout");
  assert.equal(err.index, 4);
  assert.equal(
    err.message,
    `Cannot fetch chunk 4 of "fetch.img" from http://peer:8081/v1/stream?from=4&to=6: nothing received for 50 ms (after 1000 of 4096 bytes)`,
  );
});

Deno.test("ChunkFetch: a trickle that keeps the idle timer happy is cut at the chunk's deadline", async () => {
  // 200, then one byte every 20 ms: never 50 ms of silence, but a chunk of 4096 bytes at a
  // minimum of 100 000 bytes/s (plus 30 ms of grace) must be whole 71 ms after its first byte.
  let timer: ReturnType<typeof setInterval> | undefined;
  const { c } = client(
    fixed(() =>
      new Response(
        new ReadableStream({
          start(ctl) {
            ctl.enqueue(new Uint8Array(1));
            timer = setInterval(() => ctl.enqueue(new Uint8Array(1)), 20);
          },
          cancel: () => clearInterval(timer),
        }),
      )
    ).fetch,
  );
  const req = newInFlight(50, { minRate: 100_000, graceMs: 30 });
  const active = new Set([req]);
  const stop = watchIdle(active, 50);
  try {
    const err = await failure(c.chunk(2, new ArrayBuffer(CHUNK), req));
    assert.equal(err.reason, "too-slow");
    assert.match(
      err.message,
      /^Cannot fetch chunk 2 of "fetch\.img" from http:\/\/peer:8081\/v1\/chunks\/2: not whole within 71 ms of its first byte \(\d+ of 4096 bytes; minimum 100000 bytes\/s\)$/,
    );
  } finally {
    stop();
    clearInterval(timer);
  }
});

Deno.test("ChunkFetch: a server that takes a stream and never answers is cut at the head's deadline", async () => {
  // No response head at all (a rogue that accepts and keeps quiet): long before the idle
  // timer's 10 s, at twice the 30 ms grace.
  const never: ChunkFetchOptions["fetch"] = (_url, init) =>
    new Promise((_, reject) =>
      init!.signal!.addEventListener("abort", () => reject(new Error("aborted")))
    );
  const { c } = client(never);
  const req = newInFlight(10_000, { minRate: 100_000, graceMs: 30 });
  const stop = watchIdle(new Set([req]), 10_000);
  try {
    const err = await failure(c.run([4, 5], new BufferPool(1, CHUNK), req, () => {}));
    assert.equal(err.reason, "too-slow");
    assert.equal(
      err.message,
      `Cannot fetch chunk 4 of "fetch.img" from http://peer:8081/v1/stream?from=4&to=6: no answer within 60 ms of the request`,
    );
  } finally {
    stop();
  }
});

Deno.test("ChunkFetch: a request aborted for another's failure is FetchCancelled, else server-gone", async () => {
  let cancelled = false;
  const { c, touched } = client(fixed(stalling(10)).fetch, { cancelled: () => cancelled });
  const req = newInFlight(10_000);
  setTimeout(() => req.ctl.abort(new Error("reset")), 10);
  const gone = await failure(c.chunk(6, new ArrayBuffer(CHUNK), req));
  assert.equal(gone.reason, "server-gone");
  assert.equal(
    gone.message,
    `Cannot fetch chunk 6 of "fetch.img" from http://peer:8081/v1/chunks/6: the server went away after 10 of 4096 bytes (reset)`,
  );
  assert.deepEqual(touched, [6]);
  cancelled = true;
  const req2 = newInFlight(10_000);
  setTimeout(() => req2.ctl.abort(), 10);
  const err = await c.chunk(6, new ArrayBuffer(CHUNK), req2).catch((e) => e);
  assert.ok(err instanceof FetchCancelled);
});

Deno.test("ChunkFetch.run stops before the next chunk once the fetch was cancelled", async () => {
  let cancelled = false;
  const { c } = client(appFetch(createChunkApp(src)), { cancelled: () => cancelled });
  const pool = new BufferPool(3, CHUNK);
  const got: number[] = [];
  const err = await c.run([0, 1, 2], pool, newInFlight(1000), (i, r) => {
    got.push(i);
    pool.release(r.buffer);
    cancelled = true;
  }).catch((e) => e);
  assert.ok(err instanceof FetchCancelled);
  assert.deepEqual(got, [0]);
  assert.equal(pool.free, 3);
});

Deno.test("ChunkFetch passes the request's signal to fetch", async () => {
  const app = new Hono();
  let signal: AbortSignal | undefined;
  const { c } = client((url, init) => {
    signal = init.signal;
    return appFetch(app)(url, init);
  });
  const req = newInFlight(1000);
  await failure(c.chunk(0, new ArrayBuffer(CHUNK), req));
  assert.equal(signal, req.ctl.signal);
});
