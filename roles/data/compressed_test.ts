// Chunks stored and sent zstd-compressed (manifest format 3), end to end on loopback: sliced by
// the real slicer, served by the chunk server, received, verified and written by a Receiver,
// relayed on as the compressed bytes that came; corrupt compressed chunks refused; older
// manifests and servers still imaged.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  chunkLength,
  compressChunk,
  type Manifest,
  sliceImage,
  storedLength,
} from "../../imagetools/mod.ts";
import { compressibleImage, seededImage } from "../../imagetools/testkit.ts";
import { FRAMED_HEADER } from "../protocol/mod.ts";
import { type ChunkSource, openDiskSource, openSlicesSource } from "./chunk_source.ts";
import { startChunkServer } from "./chunk_server.ts";
import type { FetchLike } from "./chunk_fetch.ts";
import { ReceiveError } from "./receive_error.ts";
import { Receiver } from "./receiver.ts";
import { openTarget } from "./target_disk.ts";
import { writeSlices } from "./testkit.ts";

const CHUNK = 64 * 1024;

/** 20 chunks: text-like ones (stored zstd), two random (raw), zeros at 6-8, a short last one. */
function goldenImage(): Uint8Array {
  const image = compressibleImage(19 * CHUNK + 3000, 31);
  image.set(seededImage(2 * CHUNK, 32), 3 * CHUNK);
  image.fill(0, 6 * CHUNK, 9 * CHUNK);
  return image;
}

const nonZero = (m: Manifest) => m.chunks.flatMap((c, i) => (c.zero ? [] : [i]));
const sum = (m: Manifest, idx: number[], f: (m: Manifest, i: number) => number) =>
  idx.reduce((n, i) => n + f(m, i), 0);

async function withSliced(fn: (dir: string, image: Uint8Array, src: ChunkSource) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "cascade-compressed-test-" });
  const image = goldenImage();
  let src: ChunkSource | undefined;
  try {
    await Deno.writeFile(join(dir, "golden.img"), image);
    await sliceImage({
      image: join(dir, "golden.img"),
      out: join(dir, "slices"),
      chunkSize: CHUNK,
    });
    src = await openSlicesSource(join(dir, "slices"));
    await fn(dir, image, src);
  } finally {
    src?.close?.();
    await Deno.remove(dir, { recursive: true });
  }
}

async function receiver(
  dir: string,
  name: string,
  src: ChunkSource,
  opts: { relayKeepBytes?: number; fetch?: FetchLike } = {},
) {
  const target = await openTarget(join(dir, name), src.manifest.size, src.manifest.name);
  return new Receiver({ manifestBytes: src.manifestBytes, target, ...opts });
}

/** The global fetch, dropping the request's framed header: what an older client asks. */
const unframedFetch: FetchLike = (url, init) => {
  const headers = { ...init.headers };
  delete headers[FRAMED_HEADER];
  return fetch(url, { ...init, headers });
};

Deno.test("zstd and raw chunks: slice -> serve -> client -> disk byte-identical, zstd bytes on the wire", async () => {
  await withSliced(async (dir, image, src) => {
    const m = src.manifest;
    assert.equal(m.format, 3);
    assert.ok(m.chunks[0].zstd! < CHUNK / 2, `chunk 0 stored in ${m.chunks[0].zstd} bytes`);
    assert.equal(m.chunks[3].raw, true);
    const wire = sum(m, nonZero(m), storedLength);
    const plain = sum(m, nonZero(m), chunkLength);
    assert.ok(wire < plain / 2, `${wire} of ${plain}`);
    const server = await startChunkServer({ source: src, hostname: "127.0.0.1", port: 0 });
    try {
      // Streams, then per-chunk requests (a server without /v1/stream), then an older client.
      const noStream: FetchLike = (url, init) =>
        url.includes("/v1/stream") ? Promise.resolve(new Response("", { status: 404 })) : fetch(
          url,
          init,
        );
      for (const [name, fetch] of [["streamed", undefined], ["per-chunk", noStream]] as const) {
        const r = await receiver(dir, name, src, fetch ? { fetch } : {});
        try {
          await r.fetchFrom(server.url);
          assert.deepEqual(await Deno.readFile(join(dir, name)), image, name);
          assert.equal(r.stats().bytesReceived, wire, name);
          assert.equal(r.stats().badChunks, 0);
          assert.deepEqual(await r.readBack(), []);
        } finally {
          r.target.close();
        }
      }
      assert.equal(server.servedBytes(), 2 * wire);
      // An older client (no framed header) is sent every chunk's bytes as they are.
      const old = await receiver(dir, "old-client", src, { fetch: unframedFetch });
      try {
        await old.fetchFrom(server.url);
        assert.deepEqual(await Deno.readFile(join(dir, "old-client")), image);
        assert.equal(old.stats().bytesReceived, plain);
      } finally {
        old.target.close();
      }
      // curl .../v1/image gets the image itself.
      const whole = await fetch(`${server.url}/v1/image`);
      assert.deepEqual(new Uint8Array(await whole.arrayBuffer()), image);
    } finally {
      await server.close();
    }
  });
});

Deno.test("a server from an imaged disk sends the zstd chunks compressed, the raw ones as they are", async () => {
  await withSliced(async (dir, image, slices) => {
    const m = slices.manifest;
    const disk = await openDiskSource(join(dir, "golden.img"), slices.manifestBytes);
    const server = await startChunkServer({ source: disk, hostname: "127.0.0.1", port: 0 });
    try {
      const r = await receiver(dir, "pc", disk);
      try {
        await r.fetchFrom(server.url);
        assert.deepEqual(await Deno.readFile(join(dir, "pc")), image);
        assert.equal(r.stats().badChunks, 0);
        // Compressed on the fly at level 1: well under the chunks' bytes, near the slices'.
        const plain = sum(m, nonZero(m), chunkLength);
        const wire = sum(m, nonZero(m), storedLength);
        const got = r.stats().bytesReceived;
        assert.ok(got < plain / 2 && got < 2 * wire, `${got} bytes for ${plain} (slices ${wire})`);
      } finally {
        r.target.close();
      }
    } finally {
      await server.close();
      disk.close?.();
    }
  });
});

Deno.test("a relay forwards the zstd bytes it received, without compressing again", async () => {
  await withSliced(async (dir, image, src) => {
    const m = src.manifest;
    const wire = sum(m, nonZero(m), storedLength);
    const plain = sum(m, nonZero(m), chunkLength);
    const server = await startChunkServer({ source: src, hostname: "127.0.0.1", port: 0 });
    const relay = await receiver(dir, "relay", src);
    const relayServer = await startChunkServer({ source: relay, hostname: "127.0.0.1", port: 0 });
    // A relay that keeps no compressed bytes (a PC done long ago): compresses what it reads.
    const forgetful = await receiver(dir, "forgetful", src, { relayKeepBytes: 0 });
    const forgetfulServer = await startChunkServer({
      source: forgetful,
      hostname: "127.0.0.1",
      port: 0,
    });
    const down = await receiver(dir, "down", src);
    const down2 = await receiver(dir, "down2", src);
    try {
      // The downstream starts first: it waits for chunks as the relay receives them.
      const downstream = down.fetchFrom(relayServer.url);
      await relay.fetchFrom(server.url);
      await downstream;
      assert.deepEqual(await Deno.readFile(join(dir, "down")), image);
      assert.equal(relayServer.servedBytes(), wire);
      assert.equal(down.stats().bytesReceived, wire);

      await forgetful.fetchFrom(server.url);
      await down2.fetchFrom(forgetfulServer.url);
      assert.deepEqual(await Deno.readFile(join(dir, "down2")), image);
      assert.equal(down2.stats().badChunks, 0);
      // At the serving level (1), not the slices' (5): more than the slices' bytes, far fewer
      // than the chunks'; the two raw chunks (3, 4) sent as they are, not tried.
      const got = down2.stats().bytesReceived;
      assert.ok(got < plain / 2 && got < 2 * wire, `${got} bytes for ${plain} (slices ${wire})`);
      const raw = chunkLength(m, 3) + chunkLength(m, 4);
      assert.deepEqual(forgetful.packStats().plainBytes, plain - raw);
    } finally {
      for (const r of [relay, forgetful, down, down2]) {
        r.close();
        r.target.close();
      }
      await relayServer.close();
      await forgetfulServer.close();
      await server.close();
    }
  });
});

/** `src` with chunks `bad` sent as frames that are not those chunks. */
function corrupting(src: ChunkSource, bad: Map<number, "not zstd" | "other content">): ChunkSource {
  return {
    manifest: src.manifest,
    manifestBytes: src.manifestBytes,
    imageId: src.imageId,
    has: (i) => src.has(i),
    heldCount: () => src.heldCount(),
    read: (i, opts) => src.read(i, opts),
    async readStored(i, opts) {
      const s = await src.readStored(i, opts);
      const how = bad.get(i);
      if (how === "not zstd") return { zstd: true, bytes: new Uint8Array(s.bytes.length).fill(7) };
      if (how === "other content") {
        const other = compressibleImage(chunkLength(src.manifest, i), 99);
        return { zstd: true, bytes: compressChunk(other)! };
      }
      return s;
    },
  };
}

Deno.test("a corrupt compressed chunk (bad zstd, or zstd of other bytes) is refused, never written, and refetched", async () => {
  await withSliced(async (dir, image, src) => {
    const bad = new Map([[1, "not zstd"], [10, "other content"]] as const);
    const evil = await startChunkServer({
      source: corrupting(src, bad),
      hostname: "127.0.0.1",
      port: 0,
    });
    const good = await startChunkServer({ source: src, hostname: "127.0.0.1", port: 0 });
    const r = await receiver(dir, "disk", src);
    try {
      const err = await r.fetchFrom(evil.url).then(() => null, (e) => e);
      assert.ok(err instanceof ReceiveError, String(err));
      assert.equal(err.reason, "bad-chunk");
      assert.match(err.message, /2 bad chunks from .*: 1, 10\)$/);
      assert.match(
        err.message,
        /^Cannot verify chunk 1 of "golden\.img" from .*: its zstd frame: /,
      );
      assert.deepEqual(r.missing(), [1, 10]);
      assert.equal(r.stats().badChunks, 2);
      // Never written: the target holds zeros where they go.
      const disk = await Deno.readFile(join(dir, "disk"));
      assert.ok(disk.subarray(CHUNK, 2 * CHUNK).every((b) => b === 0));
      assert.ok(disk.subarray(10 * CHUNK, 11 * CHUNK).every((b) => b === 0));

      await r.fetchFrom(good.url);
      assert.deepEqual(await Deno.readFile(join(dir, "disk")), image);
      assert.deepEqual(r.missing(), []);
    } finally {
      r.target.close();
      await evil.close();
      await good.close();
    }
  });
});

Deno.test("a format 1 manifest (uncompressed slices) is still imaged, by a new and an older client", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cascade-compressed-test-" });
  try {
    const image = goldenImage();
    await writeSlices(join(dir, "slices"), image, CHUNK, "old.img");
    const src = await openSlicesSource(join(dir, "slices"));
    assert.equal(src.manifest.format, 1);
    const server = await startChunkServer({ source: src, hostname: "127.0.0.1", port: 0 });
    try {
      for (const [name, fetch] of [["new", undefined], ["older", unframedFetch]] as const) {
        const target = await openTarget(join(dir, name), image.length, "old.img");
        const r = new Receiver({
          manifestBytes: src.manifestBytes,
          target,
          ...(fetch ? { fetch } : {}),
        });
        try {
          await r.fetchFrom(server.url);
          assert.deepEqual(await Deno.readFile(join(dir, name)), image);
          assert.equal(
            r.stats().bytesReceived,
            sum(src.manifest, nonZero(src.manifest), chunkLength),
          );
        } finally {
          target.close();
        }
      }
    } finally {
      await server.close();
      src.close?.();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resume onto a half-written target: only the missing chunks are fetched, as zstd", async () => {
  await withSliced(async (dir, image, src) => {
    const m = src.manifest;
    // A PC that lost power: the odd chunks never reached its disk (zeros there).
    const disk = image.slice();
    for (let i = 1; i < m.chunks.length; i += 2) disk.fill(0, i * CHUNK, (i + 1) * CHUNK);
    await Deno.writeFile(join(dir, "disk"), disk);
    const server = await startChunkServer({ source: src, hostname: "127.0.0.1", port: 0 });
    const r = await receiver(dir, "disk", src);
    try {
      await r.scanExisting();
      const missing = nonZero(m).filter((i) => i % 2 === 1);
      assert.deepEqual(r.missing(), missing);
      await r.fetchFrom(server.url);
      assert.deepEqual(await Deno.readFile(join(dir, "disk")), image);
      assert.equal(r.stats().bytesReceived, sum(m, missing, storedLength));
      assert.ok(sum(m, missing, storedLength) < sum(m, missing, chunkLength) / 2);
    } finally {
      r.target.close();
      await server.close();
    }
  });
});
