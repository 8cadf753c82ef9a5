import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { type ChunkSource, openSlicesSource } from "./chunk_source.ts";
import { createChunkApp, startChunkServer } from "./chunk_server.ts";
import { Receiver } from "./receiver.ts";
import { openTarget } from "./target_disk.ts";
import { randomImage, writeSlices } from "./testkit.ts";

const CHUNK = 64 * 1024;

async function withSlices(
  image: Uint8Array,
  fn: (src: ChunkSource, manifestBytes: Uint8Array) => Promise<void>,
) {
  const dir = await Deno.makeTempDir();
  try {
    const { manifestBytes } = await writeSlices(dir, image, CHUNK, "games.img");
    await fn(await openSlicesSource(dir), manifestBytes);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("chunk app: manifest, health, chunks, and 400 for bad indices", async () => {
  const image = randomImage(3 * CHUNK + 10, [[CHUNK, 2 * CHUNK]]);
  await withSlices(image, async (src, manifestBytes) => {
    const app = createChunkApp(src);
    const man = await app.request("/v1/manifest");
    assert.equal(man.status, 200);
    assert.equal(man.headers.get("content-type"), "application/json");
    assert.deepEqual(new Uint8Array(await man.arrayBuffer()), manifestBytes);
    // Compressed for a PC that accepts it (Deno's fetch sends "gzip, br"), the same bytes inside.
    const gz = await app.request("/v1/manifest", { headers: { "accept-encoding": "gzip, br" } });
    assert.equal(gz.status, 200);
    assert.equal(gz.headers.get("content-encoding"), "gzip");
    assert.equal(gz.headers.get("x-cascade-image"), src.imageId);
    assert.deepEqual(
      new Uint8Array(gunzipSync(new Uint8Array(await gz.arrayBuffer()))),
      manifestBytes,
    );

    const health = await app.request("/v1/health");
    assert.deepEqual(await health.json(), { imageId: src.imageId, held: 4, total: 4 });

    for (const i of [0, 1, 3]) {
      const res = await app.request(`/v1/chunks/${i}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-cascade-image"), src.imageId);
      assert.equal(res.headers.get("content-type"), "application/octet-stream");
      assert.deepEqual(
        new Uint8Array(await res.arrayBuffer()),
        image.subarray(i * CHUNK, (i + 1) * CHUNK),
      );
    }
    for (const bad of ["4", "-1", "abc", "1.5", "99999999999999999999"]) {
      const res = await app.request(`/v1/chunks/${bad}`);
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), {
        error: `Invalid chunk index "${bad}": image "games.img" has chunks 0..3`,
      });
    }
    const nf = await app.request("/v2/x");
    assert.equal(nf.status, 404);
    assert.deepEqual(await nf.json(), { error: 'No such path "/v2/x"' });
  });
});

Deno.test("chunk app: a chunk the source lacks answers 503 after the wait", async () => {
  await withSlices(randomImage(2 * CHUNK), async (src) => {
    const lacking: ChunkSource = {
      manifest: src.manifest,
      manifestBytes: src.manifestBytes,
      imageId: src.imageId,
      has: () => false,
      heldCount: () => 0,
      read: async (_i, opts) => {
        await new Promise((r) => setTimeout(r, opts?.waitMs));
        const { ChunkUnavailableError } = await import("./chunk_source.ts");
        throw new ChunkUnavailableError("not yet");
      },
      readStored: async (i, opts) => ({ zstd: false, bytes: await lacking.read(i, opts) }),
    };
    const app = createChunkApp(lacking, { waitMs: 5 });
    const res = await app.request("/v1/chunks/1");
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), {
      error: 'Chunk 1 of "games.img" is not available here yet',
    });
  });
});

Deno.test("startChunkServer streams the whole image and counts bytes served", async () => {
  const image = randomImage(5 * CHUNK + 123, [[2 * CHUNK, 4 * CHUNK]]);
  await withSlices(image, async (src) => {
    const server = await startChunkServer({ source: src, hostname: "127.0.0.1", port: 0 });
    try {
      const res = await fetch(`${server.url}/v1/image`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-length"), String(image.length));
      assert.deepEqual(new Uint8Array(await res.arrayBuffer()), image);
      const one = await fetch(`${server.url}/v1/chunks/5`);
      assert.equal((await one.arrayBuffer()).byteLength, 123);
      assert.equal(server.servedBytes(), image.length + 123);
    } finally {
      await server.close();
    }
  });
});

Deno.test("close() lets a whole-image download in flight finish", async () => {
  const image = randomImage(40 * CHUNK);
  await withSlices(image, async (src) => {
    const server = await startChunkServer({ source: src, hostname: "127.0.0.1" });
    const res = await fetch(`${server.url}/v1/image`);
    const reader = res.body!.getReader();
    const first = await reader.read();
    const closed = server.close();
    const parts = [first.value!];
    for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(r.value);
    await closed;
    const got = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      got.set(p, at);
      at += p.length;
    }
    assert.deepEqual(got, image);
    await assert.rejects(fetch(`${server.url}/v1/health`));
  });
});

Deno.test("chunk app: /v1/stream sends the non-zero chunks of a range in order; 400 for bad ranges", async () => {
  // Chunks 0..5, zeros at 2 and 4, the last one short.
  const image = randomImage(5 * CHUNK + 77, [[2 * CHUNK, 3 * CHUNK], [4 * CHUNK, 5 * CHUNK]]);
  await withSlices(image, async (src) => {
    const requested: number[] = [];
    const rec: ChunkSource = { ...src, has: (i) => src.has(i), heldCount: () => src.heldCount() };
    rec.read = (i, opts) => {
      requested.push(i);
      return src.read(i, opts);
    };
    const app = createChunkApp(rec);
    const part = (i: number) => image.subarray(i * CHUNK, Math.min(image.length, (i + 1) * CHUNK));
    const res = await app.request("/v1/stream?from=1&to=6");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-cascade-image"), src.imageId);
    const want = new Uint8Array(2 * CHUNK + 77);
    want.set(part(1), 0);
    want.set(part(3), CHUNK);
    want.set(part(5), 2 * CHUNK);
    assert.equal(res.headers.get("content-length"), String(want.length));
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), want);
    assert.deepEqual(requested, [1, 3, 5]);

    const zeros = await app.request("/v1/stream?from=2&to=3");
    assert.equal(zeros.status, 200);
    assert.equal((await zeros.arrayBuffer()).byteLength, 0);

    for (const [a, b] of [["3", "3"], ["4", "2"], ["0", "7"], ["-1", "2"], ["x", "2"], ["", "1"]]) {
      const bad = await app.request(`/v1/stream?from=${a}&to=${b}`);
      assert.equal(bad.status, 400);
      assert.deepEqual(await bad.json(), {
        error:
          `Invalid chunk range from "${a}" to "${b}": image "games.img" has chunks 0..5 (to is exclusive)`,
      });
    }
    const none = await app.request("/v1/stream?to=2");
    assert.equal(none.status, 400);
  });
});

Deno.test("chunk app: /v1/stream from a relay waits for each chunk, sending each as it arrives", async () => {
  const image = randomImage(4 * CHUNK + 9, [[CHUNK, 2 * CHUNK]]);
  await withSlices(image, async (src, manifestBytes) => {
    const dir = await Deno.makeTempDir();
    const upstream = await startChunkServer({ source: src, hostname: "127.0.0.1" });
    const target = await openTarget(`${dir}/relay`, image.length, "games.img");
    const relayRx = new Receiver({ manifestBytes, target });
    const relay = await startChunkServer({
      source: relayRx,
      hostname: "127.0.0.1",
      waitMs: 10_000,
    });
    try {
      const res = await fetch(`${relay.url}/v1/stream?from=0&to=5`);
      assert.equal(res.status, 200);
      assert.equal(relayRx.heldCount(), 0);
      const body = res.arrayBuffer();
      await new Promise((r) => setTimeout(r, 30));
      await relayRx.fetchFrom(upstream.url);
      const want = new Uint8Array(3 * CHUNK + 9);
      want.set(image.subarray(0, CHUNK), 0);
      want.set(image.subarray(2 * CHUNK), CHUNK);
      assert.deepEqual(new Uint8Array(await body), want);
    } finally {
      target.close();
      await relay.close();
      await upstream.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("chunk app with tickets: chunks only for a valid ticket from its address", async () => {
  const image = randomImage(2 * CHUNK);
  await withSlices(image, async (src, manifestBytes) => {
    const seen: [string, string][] = [];
    const app = createChunkApp(src, {
      tickets: (ticket, address) => {
        seen.push([ticket, address]);
        return ticket === "good.ticket" && address === "10.0.0.5";
      },
    });
    const info = (hostname: string) => ({ remoteAddr: { transport: "tcp", hostname, port: 1 } });
    const get = (path: string, auth?: string, from = "10.0.0.5") =>
      app.request(path, auth ? { headers: { authorization: auth } } : {}, info(from));
    const refused = {
      error: "This server serves only the clients the master sent it: no valid ticket",
    };
    for (const path of ["/v1/chunks/0", "/v1/stream?from=0&to=2", "/v1/image"]) {
      for (
        const [auth, from] of [[undefined, "10.0.0.5"], ["Bearer bad.ticket", "10.0.0.5"], [
          "Bearer good.ticket",
          "10.0.0.6",
        ], ["Basic Zm9vOmJhcg==", "10.0.0.5"]] as const
      ) {
        const res = await get(path, auth, from);
        assert.ok(res.status === 401 || res.status === 400, `${path} ${auth} ${res.status}`);
        assert.deepEqual(await res.json(), refused);
      }
      const ok = await get(path, "Bearer good.ticket");
      assert.equal(ok.status, 200, path);
      await ok.body?.cancel();
    }
    assert.deepEqual(seen.at(-1), ["good.ticket", "10.0.0.5"]);
    // The manifest and health stay open: the manifest is public anyway.
    const man = await get("/v1/manifest");
    assert.deepEqual(new Uint8Array(await man.arrayBuffer()), manifestBytes);
    assert.equal((await get("/v1/health")).status, 200);
  });
});
