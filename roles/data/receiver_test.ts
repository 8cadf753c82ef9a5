import assert from "node:assert/strict";
import { join } from "node:path";
import { chunkLength, imageIdOf, type Manifest, serializeManifest } from "../../imagetools/mod.ts";
import { type ChunkSource, openSlicesSource } from "./chunk_source.ts";
import { createChunkApp, startChunkServer } from "./chunk_server.ts";
import { ReceiveError } from "./receive_error.ts";
import { Receiver, type ReceiverStats } from "./receiver.ts";
import { appFetch, memorySource, memoryTarget, randomImage, writeSlices } from "./testkit.ts";
import { openTarget } from "./target_disk.ts";

const CHUNK = 64 * 1024;
// 24 chunks, the last one short, with zero runs (chunks 3-5 and 17).
const SIZE = 23 * CHUNK + 5000;
const ZEROS: [number, number][] = [[3 * CHUNK, 6 * CHUNK], [17 * CHUNK, 18 * CHUNK]];

interface Fixture {
  dir: string;
  image: Uint8Array;
  src: ChunkSource;
  manifestBytes: Uint8Array;
}

async function withFixture(fn: (f: Fixture) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    const image = randomImage(SIZE, ZEROS);
    const { manifestBytes } = await writeSlices(join(dir, "slices"), image, CHUNK, "games.img");
    await fn({ dir, image, src: await openSlicesSource(join(dir, "slices")), manifestBytes });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A source that records which chunks were asked for and may alter or delay them. */
function wrap(
  src: ChunkSource,
  change: { bytes?: (i: number, b: Uint8Array) => Uint8Array; delayMs?: number } = {},
) {
  const requested: number[] = [];
  const source: ChunkSource = {
    manifest: src.manifest,
    manifestBytes: src.manifestBytes,
    imageId: src.imageId,
    has: (i) => src.has(i),
    heldCount: () => src.heldCount(),
    async read(i, opts) {
      requested.push(i);
      if (change.delayMs) await new Promise((r) => setTimeout(r, change.delayMs));
      const b = await src.read(i, opts);
      return change.bytes ? change.bytes(i, b) : b;
    },
    // Sent as the (maybe altered) bytes they are.
    async readStored(i, opts) {
      return { zstd: false, bytes: await this.read(i, opts) };
    },
  };
  return { source, requested };
}

async function newReceiver(
  f: Fixture,
  name: string,
  inflight = 4,
  onProgress?: (s: ReceiverStats) => void,
) {
  const target = await openTarget(join(f.dir, name), f.image.length, "games.img");
  return new Receiver({ manifestBytes: f.manifestBytes, target, inflight, onProgress });
}

const nonZero = (f: Fixture) => f.src.manifest.chunks.flatMap((c, i) => c.zero ? [] : [i]);
const lengthOf = (f: Fixture, idx: number[]) =>
  idx.reduce((s, i) => s + chunkLength(f.src.manifest, i), 0);

Deno.test("Receiver fetches a sliced image over HTTP: identical bytes, zeros not sent", async () => {
  await withFixture(async (f) => {
    const server = await startChunkServer({ source: f.src, hostname: "127.0.0.1", port: 0 });
    const seen: number[] = [];
    const r = await newReceiver(f, "disk", 4, (s) => seen.push(s.heldChunks));
    try {
      await r.fetchFrom(server.url);
      assert.deepEqual(await Deno.readFile(join(f.dir, "disk")), f.image);
      const s = r.stats();
      assert.equal(s.heldChunks, 24);
      assert.equal(s.totalChunks, 24);
      assert.equal(s.bytesReceived, lengthOf(f, nonZero(f)));
      assert.equal(s.bytesRefetched, 0);
      assert.equal(s.badChunks, 0);
      assert.equal(server.servedBytes(), s.bytesReceived);
      assert.deepEqual(r.missing(), []);
      assert.equal(seen.at(-1), 24);
    } finally {
      r.target.close();
      await server.close();
    }
  });
});

Deno.test("Receiver writes zeros over old bytes on a used target", async () => {
  await withFixture(async (f) => {
    await Deno.writeFile(join(f.dir, "old"), new Uint8Array(SIZE).fill(0xaa));
    const server = await startChunkServer({ source: f.src, hostname: "127.0.0.1", port: 0 });
    const r = await newReceiver(f, "old", 2);
    try {
      assert.equal(r.target.fresh, false);
      await r.fetchFrom(server.url);
      assert.deepEqual(await Deno.readFile(join(f.dir, "old")), f.image);
    } finally {
      r.target.close();
      await server.close();
    }
  });
});

Deno.test("a server dying mid-transfer: server-gone, then another finishes only the rest", async () => {
  await withFixture(async (f) => {
    const app = createChunkApp(f.src);
    const dead = new AbortController();
    // Streams 8 chunks and half of the next, then is torn down (as a PC losing power).
    const dying = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: dead.signal, onListen() {} },
      async (req) => {
        if (new URL(req.url).pathname !== "/v1/stream") return app.fetch(req);
        const sent = nonZero(f).slice(0, 9);
        const parts = await Promise.all(sent.map((i) => f.src.read(i)));
        parts[8] = parts[8].slice(0, CHUNK / 2);
        // Torn down once the server has taken every part to send (not by a timer from the
        // start: on a loaded machine the parts were not all sent yet).
        let taken = 0;
        const body = new ReadableStream({
          pull(c) {
            if (taken < parts.length) c.enqueue(parts[taken++]);
            else setTimeout(() => dead.abort(), 50);
          },
        }, { highWaterMark: 0 });
        return new Response(body, {
          headers: { "content-length": String(lengthOf(f, nonZero(f))) },
        });
      },
    );
    const r = await newReceiver(f, "disk");
    try {
      const err = await r.fetchFrom(`http://127.0.0.1:${dying.addr.port}`).then(
        () => assert.fail("fetchFrom should fail"),
        (e) => e,
      );
      assert.ok(err instanceof ReceiveError);
      assert.equal(err.reason, "server-gone");
      assert.match(
        err.message,
        /^Cannot fetch chunk \d+ of "games.img" from http:\/\/127\.0\.0\.1/,
      );
      await dying.finished;

      const missing = r.missing();
      assert.deepEqual(missing, nonZero(f).slice(8));
      const heldBefore = nonZero(f).filter((i) => !missing.includes(i));
      const second = wrap(f.src);
      const server = await startChunkServer({ source: second.source, hostname: "127.0.0.1" });
      try {
        await r.fetchFrom(server.url);
      } finally {
        await server.close();
      }
      // Nothing verified was fetched again: only the chunks missing after the failure.
      assert.deepEqual([...second.requested].sort((a, b) => a - b), missing);
      assert.ok(heldBefore.every((i) => !second.requested.includes(i)));
      const s = r.stats();
      assert.ok(s.bytesRefetched > 0 && s.bytesRefetched <= 4 * CHUNK, `${s.bytesRefetched}`);
      assert.deepEqual(await Deno.readFile(join(f.dir, "disk")), f.image);
    } finally {
      r.target.close();
    }
  });
});

Deno.test("a corrupted chunk is refused, never written; the others are", async () => {
  await withFixture(async (f) => {
    const bad = 9;
    const corrupt = wrap(f.src, {
      bytes: (i, b) => {
        if (i !== bad) return b;
        const c = b.slice();
        c[100] ^= 1;
        return c;
      },
    });
    const server = await startChunkServer({ source: corrupt.source, hostname: "127.0.0.1" });
    const r = await newReceiver(f, "disk");
    try {
      const err = await r.fetchFrom(server.url).then(() => assert.fail("should fail"), (e) => e);
      assert.ok(err instanceof ReceiveError);
      assert.equal(err.reason, "bad-chunk");
      assert.equal(err.index, bad);
      assert.equal(
        err.message,
        `Cannot verify chunk 9 of "games.img" from ${server.url}: expected SHA-256 "${
          f.src.manifest.chunks[bad].sha256
        }", got "${err.message.match(/got "([0-9a-f]{64})"/)![1]}"`,
      );
      assert.deepEqual(r.missing(), [bad]);
      assert.equal(r.stats().badChunks, 1);
      const disk = await Deno.readFile(join(f.dir, "disk"));
      const at = bad * CHUNK;
      assert.deepEqual(disk.subarray(at, at + CHUNK), new Uint8Array(CHUNK));
      const expected = f.image.slice();
      expected.fill(0, at, at + CHUNK);
      assert.deepEqual(disk, expected);

      // A good server then supplies just that chunk.
      const good = await startChunkServer({ source: f.src, hostname: "127.0.0.1" });
      await r.fetchFrom(good.url);
      await good.close();
      assert.equal(r.stats().bytesRefetched, CHUNK);
      assert.deepEqual(await Deno.readFile(join(f.dir, "disk")), f.image);
    } finally {
      r.target.close();
      await server.close();
    }
  });
});

Deno.test("relay: a Receiver still receiving serves chunks as they arrive", async () => {
  await withFixture(async (f) => {
    const slow = wrap(f.src, { delayMs: 3 });
    const upstream = await startChunkServer({ source: slow.source, hostname: "127.0.0.1" });
    const relayRx = await newReceiver(f, "relay", 2);
    const relay = await startChunkServer({
      source: relayRx,
      hostname: "127.0.0.1",
      waitMs: 10_000,
    });
    const down = await newReceiver(f, "down");
    try {
      assert.equal(relayRx.heldCount(), 0);
      // The downstream asks first: its requests wait at the relay for the chunks.
      const downDone = down.fetchFrom(relay.url);
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(relayRx.heldCount(), 0);
      await relayRx.fetchFrom(upstream.url);
      await downDone;
      assert.deepEqual(await Deno.readFile(join(f.dir, "relay")), f.image);
      assert.deepEqual(await Deno.readFile(join(f.dir, "down")), f.image);
      assert.equal(down.stats().bytesReceived, lengthOf(f, nonZero(f)));
      const health = await (await fetch(`${relay.url}/v1/health`)).json();
      assert.deepEqual(health, { imageId: f.src.imageId, held: 24, total: 24 });
    } finally {
      relayRx.target.close();
      down.target.close();
      await relay.close();
      await upstream.close();
    }
  });
});

Deno.test("relay: a chunk that does not arrive in time is a 503 and the downstream's error", async () => {
  await withFixture(async (f) => {
    const idle = await newReceiver(f, "relay");
    const relay = await startChunkServer({ source: idle, hostname: "127.0.0.1", waitMs: 50 });
    const down = await newReceiver(f, "down", 1);
    try {
      const err = await down.fetchFrom(relay.url).then(() => assert.fail("should fail"), (e) => e);
      assert.ok(err instanceof ReceiveError);
      assert.equal(err.reason, "http-503");
      assert.equal(err.index, 0);
      assert.equal(
        err.message,
        `Cannot fetch chunk 0 of "games.img" from ${relay.url}/v1/chunks/0: HTTP 503`,
      );
      assert.equal(down.stats().bytesReceived, 0);
    } finally {
      idle.target.close();
      down.target.close();
      await relay.close();
    }
  });
});

Deno.test("scanExisting resumes a half-written target: only missing chunks are fetched", async () => {
  await withFixture(async (f) => {
    // Even chunks already written, odd ones garbage; zero chunk 4 zero, zero chunk 17 garbage.
    const disk = f.image.slice();
    for (let i = 1; i < 24; i += 2) disk.fill(0x55, i * CHUNK, (i + 1) * CHUNK);
    disk[4 * CHUNK] = 0;
    disk[17 * CHUNK + 7] = 1;
    const path = join(f.dir, "disk");
    await Deno.writeFile(path, disk);
    const r = await newReceiver(f, "disk");
    const rec = wrap(f.src);
    const server = await startChunkServer({ source: rec.source, hostname: "127.0.0.1" });
    try {
      const marked = await r.scanExisting();
      // Even chunks: 0 2 4 6 .. 22 (12, zero chunk 4 among them); not 17.
      assert.equal(marked, 12);
      assert.deepEqual(
        r.missing(),
        [1, 3, 5, 7, 9, 11, 13, 15, 19, 21, 23].filter((i) => i !== 3 && i !== 5),
      );
      await r.fetchFrom(server.url);
      assert.deepEqual(rec.requested.sort((a, b) => a - b), [1, 7, 9, 11, 13, 15, 19, 21, 23]);
      assert.deepEqual(await Deno.readFile(path), f.image);
    } finally {
      r.target.close();
      await server.close();
    }
  });
});

Deno.test("readBack finds a byte flipped on the target after receipt", async () => {
  await withFixture(async (f) => {
    const server = await startChunkServer({ source: f.src, hostname: "127.0.0.1" });
    const r = await newReceiver(f, "disk");
    const path = join(f.dir, "disk");
    try {
      await r.fetchFrom(server.url);
      assert.deepEqual(await r.readBack(), []);
      using file = await Deno.open(path, { write: true, read: true });
      for (const at of [12 * CHUNK + 999, 4 * CHUNK + 3]) {
        await file.seek(at, Deno.SeekMode.Start);
        await file.write(new Uint8Array([0x42]));
      }
      assert.deepEqual(await r.readBack(), [4, 12]);
      assert.equal(r.heldCount(), 22);
      assert.deepEqual(r.missing(), [12]);
      await r.fetchFrom(server.url); // Refetches 12, rewrites zero chunk 4.
      assert.deepEqual(await Deno.readFile(path), f.image);
    } finally {
      r.target.close();
      await server.close();
    }
  });
});

Deno.test("a server that stalls mid-chunk is a timeout; an abort stops fetchFrom", async () => {
  await withFixture(async (f) => {
    const stop = new AbortController();
    const stalling = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: stop.signal, onListen() {} },
      () =>
        new Response(new ReadableStream({ start: (c) => c.enqueue(new Uint8Array(10)) }), {
          headers: { "content-length": String(CHUNK) },
        }),
    );
    const r = await newReceiver(f, "disk", 1);
    try {
      const url = `http://127.0.0.1:${stalling.addr.port}`;
      const err = await r.fetchFrom(url, { requestTimeoutMs: 100 }).then(
        () => assert.fail("should fail"),
        (e) => e,
      );
      assert.ok(err instanceof ReceiveError);
      assert.equal(err.reason, "timeout");
      assert.equal(
        err.message,
        `Cannot fetch chunk 0 of "games.img" from ${url}/v1/stream?from=0&to=24: nothing received for 100 ms (after 10 of 65536 bytes)`,
      );
      const ac = new AbortController();
      const p = r.fetchFrom(url, { signal: ac.signal });
      setTimeout(() => ac.abort(), 30);
      await assert.rejects(p, { name: "AbortError" });
      assert.equal(r.heldCount(), 0);
    } finally {
      r.target.close();
      stop.abort();
      await stalling.finished;
    }
  });
});

Deno.test("switching servers: abort one fetch and start the next at once", async () => {
  await withFixture(async (f) => {
    const slow = await startChunkServer({
      source: wrap(f.src, { delayMs: 20 }).source,
      hostname: "127.0.0.1",
    });
    const good = wrap(f.src);
    const fast = await startChunkServer({ source: good.source, hostname: "127.0.0.1" });
    const r = await newReceiver(f, "disk", 2);
    try {
      const ac = new AbortController();
      const first = r.fetchFrom(slow.url, { signal: ac.signal });
      while (r.heldCount() < 3) await new Promise((res) => setTimeout(res, 5));
      ac.abort();
      // Not awaited first: the second call waits for the first to settle, then takes over.
      const second = r.fetchFrom(fast.url);
      await assert.rejects(first, { name: "AbortError" });
      const heldAfterFirst = r.heldCount();
      await second;
      assert.ok(heldAfterFirst >= 3, `${heldAfterFirst}`);
      assert.equal(new Set(good.requested).size, good.requested.length);
      assert.ok(r.stats().bytesRefetched <= 2 * CHUNK);
      assert.deepEqual(await Deno.readFile(join(f.dir, "disk")), f.image);
    } finally {
      r.target.close();
      await slow.close();
      await fast.close();
    }
  });
});

Deno.test("an older server without /v1/stream (404): per-chunk requests fetch it all", async () => {
  await withFixture(async (f) => {
    const rec = wrap(f.src);
    const app = createChunkApp(rec.source);
    const paths: string[] = [];
    const old = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const path = new URL(req.url).pathname;
      paths.push(path);
      if (path === "/v1/stream") return Response.json({ error: "No such path" }, { status: 404 });
      return app.fetch(req);
    });
    const r = await newReceiver(f, "disk");
    try {
      await r.fetchFrom(`http://127.0.0.1:${old.addr.port}`);
      assert.equal(paths.filter((p) => p === "/v1/stream").length, 1);
      assert.deepEqual([...rec.requested].sort((a, b) => a - b), nonZero(f));
      assert.equal(r.stats().bytesReceived, lengthOf(f, nonZero(f)));
      assert.equal(r.stats().bytesRefetched, 0);
      assert.deepEqual(await Deno.readFile(join(f.dir, "disk")), f.image);
      assert.deepEqual(await r.readBack(), []);
    } finally {
      r.target.close();
      await old.shutdown();
    }
  });
});

Deno.test("streaming: one request per run of missing chunks; a bad chunk mid-stream is never written", async () => {
  await withFixture(async (f) => {
    const paths: string[] = [];
    const corrupt = wrap(f.src, {
      bytes: (i, b) => {
        if (i !== 7) return b;
        const c = b.slice();
        c[5] ^= 1;
        return c;
      },
    });
    const app = createChunkApp(corrupt.source);
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const u = new URL(req.url);
      paths.push(u.pathname + u.search);
      return app.fetch(req);
    });
    const r = await newReceiver(f, "disk");
    try {
      const err = await r.fetchFrom(`http://127.0.0.1:${server.addr.port}`).then(
        () => assert.fail("should fail"),
        (e) => e,
      );
      assert.ok(err instanceof ReceiveError);
      assert.equal(err.reason, "bad-chunk");
      assert.equal(err.index, 7);
      // One stream for all (zero chunks 3-5 and 17 do not split a run); the rest after 7 is
      // verified and written.
      assert.deepEqual(paths, ["/v1/stream?from=0&to=24"]);
      assert.deepEqual(r.missing(), [7]);
      const expected = f.image.slice();
      expected.fill(0, 7 * CHUNK, 8 * CHUNK);
      assert.deepEqual(await Deno.readFile(join(f.dir, "disk")), expected);
      // Only the unverified chunk is asked again.
      const seen = wrap(f.src);
      const good = await startChunkServer({ source: seen.source, hostname: "127.0.0.1" });
      await r.fetchFrom(good.url);
      await good.close();
      assert.deepEqual(seen.requested, [7]);
      assert.deepEqual(await Deno.readFile(join(f.dir, "disk")), f.image);
      assert.deepEqual(await r.readBack(), []);
    } finally {
      r.target.close();
      await server.shutdown();
    }
  });
});

Deno.test("Receiver without sockets: a Hono app's request as fetch, a target in memory", async () => {
  const image = randomImage(SIZE, ZEROS);
  const src = memorySource(image, CHUNK, "games.img");
  const app = createChunkApp(src);
  const asked: string[] = [];
  const target = memoryTarget(SIZE);
  let now = 0;
  const r = new Receiver({
    manifestBytes: src.manifestBytes,
    target,
    fetch: (url, init) => {
      asked.push(new URL(url).pathname + new URL(url).search);
      return appFetch(app)(url, init);
    },
    // The rate meter's clock: 100 ms pass between two chunks.
    now: () => now,
    onProgress: () => now += 100,
  });
  // A relay reader waiting for chunk 7 is woken when it arrives.
  const relayed = r.read(7, { waitMs: 10_000 });
  await r.fetchFrom("http://server:1/");
  assert.deepEqual(await relayed, image.subarray(7 * CHUNK, 8 * CHUNK));
  assert.deepEqual(target.bytes, image);
  // Runs of missing chunks, zero runs inside a run skipped by the server.
  assert.deepEqual(asked, ["/v1/stream?from=0&to=24"]);
  const s = r.stats();
  assert.equal(s.heldChunks, 24);
  assert.equal(s.bytesReceived, SIZE - 4 * CHUNK);
  // At most one chunk per 100 ms of the meter's clock: 10 chunks a second.
  assert.ok(s.rate > 0 && s.rate <= 10 * CHUNK, `${s.rate}`);
  assert.deepEqual(await r.readBack(), []);
});

Deno.test("Receiver without sockets: no /v1/stream (404) falls back to per-chunk requests", async () => {
  const image = randomImage(SIZE, ZEROS);
  const src = memorySource(image, CHUNK, "games.img");
  const app = createChunkApp(src);
  const paths = new Set<string>();
  const target = memoryTarget(SIZE, { fresh: false });
  target.bytes.fill(0xaa);
  const r = new Receiver({
    manifestBytes: src.manifestBytes,
    target,
    fetch: (url, init) => {
      const path = new URL(url).pathname;
      paths.add(path.replace(/\d+$/, "N"));
      if (path === "/v1/stream") return Promise.resolve(new Response("no", { status: 404 }));
      return appFetch(app)(url, init);
    },
  });
  await r.fetchFrom("http://server:1");
  assert.deepEqual([...paths], ["/v1/stream", "/v1/chunks/N"]);
  assert.deepEqual(target.bytes, image); // zero chunks written over the old bytes
  assert.deepEqual(r.missing(), []);
});

Deno.test("chunks a format 2 manifest marks free are neither sent nor written; read-back skips them", async () => {
  const image = randomImage(SIZE, ZEROS);
  const plain = memorySource(image, CHUNK, "games.img");
  // Chunks 3-5 lie in free blocks; chunk 17 is zeros a file system uses (written as zeros).
  const manifest: Manifest = {
    ...plain.manifest,
    format: 2,
    chunks: plain.manifest.chunks.map((c, i) => (i >= 3 && i <= 5 ? { ...c, free: true } : c)),
  };
  const manifestBytes = new TextEncoder().encode(serializeManifest(manifest));
  const src: ChunkSource = { ...plain, manifest, manifestBytes, imageId: imageIdOf(manifestBytes) };
  const target = memoryTarget(SIZE, { fresh: false });
  target.bytes.fill(0xaa);
  const r = new Receiver({ manifestBytes, target, fetch: appFetch(createChunkApp(src)) });
  await r.fetchFrom("http://server:1/");
  const expected = image.slice();
  expected.fill(0xaa, 3 * CHUNK, 6 * CHUNK);
  assert.deepEqual(target.bytes, expected);
  assert.equal(r.stats().heldChunks, 24);
  assert.deepEqual(await r.readBack(), []);
});

Deno.test("a chunk the disk took wrong is caught by verify-behind's compare and refetched", async () => {
  await withFixture(async (f) => {
    const server = await startChunkServer({ source: f.src, hostname: "127.0.0.1" });
    const r = await newReceiver(f, "disk");
    const path = join(f.dir, "disk");
    const writeAt = r.target.writeAt.bind(r.target);
    let flipped = false;
    // The disk takes chunk 7's first write with one bit wrong (the verified buffer is right).
    r.target.writeAt = (offset, data) => {
      if (flipped || offset !== 7 * CHUNK) return writeAt(offset, data);
      flipped = true;
      const bad = data.slice();
      bad[1234] ^= 0x10;
      return writeAt(offset, bad);
    };
    try {
      await r.fetchFrom(server.url);
      assert.ok(flipped);
      assert.deepEqual(await r.readBack(), [7]);
      assert.deepEqual(r.missing(), [7]);
      await r.fetchFrom(server.url);
      assert.deepEqual(await r.readBack(), []);
      assert.deepEqual(await Deno.readFile(path), f.image);
    } finally {
      r.target.close();
      await server.close();
    }
  });
});
