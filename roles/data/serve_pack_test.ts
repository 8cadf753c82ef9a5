// Chunks served from a disk compressed on the fly (serve_pack.ts): the frames decompress to the
// chunk, raw-marked chunks are never tried, backed-up workers send raw at once, and a PC done
// long ago (its kept window gone) still images a newcomer byte-identical, either way.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  chunkLength,
  decompressChunk,
  type Manifest,
  sliceImage,
  storedLength,
} from "../../imagetools/mod.ts";
import { compressibleImage, seededImage } from "../../imagetools/testkit.ts";
import { openSlicesSource } from "./chunk_source.ts";
import { startChunkServer } from "./chunk_server.ts";
import { Receiver } from "./receiver.ts";
import { ServePacker } from "./serve_pack.ts";
import { openTarget } from "./target_disk.ts";

const CHUNK = 64 * 1024;
const nonZero = (m: Manifest) => m.chunks.flatMap((c, i) => (c.zero ? [] : [i]));
const sum = (m: Manifest, f: (m: Manifest, i: number) => number) =>
  nonZero(m).reduce((n, i) => n + f(m, i), 0);

Deno.test("a packer's frame is the chunk, smaller; backed-up workers give null at once", async () => {
  const packer = new ServePacker(1, 1, 1);
  try {
    const plain = compressibleImage(CHUNK, 5);
    const copy = plain.slice();
    // Three at once with room for one: the first is compressed, the others go raw.
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => packer.pack(plain)));
    assert.ok(a && a.length < CHUNK / 2, `${a?.length} bytes`);
    assert.deepEqual(decompressChunk(a, CHUNK), plain);
    assert.equal(b, null);
    assert.equal(c, null);
    assert.deepEqual(plain, copy);
    assert.deepEqual(packer.stats(), {
      packed: 1,
      plainBytes: CHUNK,
      packedBytes: a.length,
      backedUp: 2,
    });
    // Once the worker is free again, the next one is compressed.
    assert.ok(await packer.pack(plain));
    // Bytes that do not shrink: raw.
    assert.equal(await packer.pack(seededImage(CHUNK, 6)), null);
  } finally {
    packer.close();
  }
});

/** Slices of 24 chunks: compressible ones, two random (raw in the manifest: 5, 6), zeros 9-10. */
async function withSlices(fn: (dir: string, image: Uint8Array) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "cascade-serve-pack-test-" });
  try {
    const image = compressibleImage(24 * CHUNK, 41);
    image.set(seededImage(2 * CHUNK, 42), 5 * CHUNK);
    image.fill(0, 9 * CHUNK, 11 * CHUNK);
    await Deno.writeFile(join(dir, "golden.img"), image);
    await sliceImage({
      image: join(dir, "golden.img"),
      out: join(dir, "slices"),
      chunkSize: CHUNK,
    });
    await fn(dir, image);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fromDisk: a chunk the manifest marks raw goes raw, untried", async () => {
  await withSlices(async (dir, image) => {
    const src = await openSlicesSource(join(dir, "slices"));
    const packer = new ServePacker();
    try {
      const m = src.manifest;
      assert.equal(m.chunks[5].raw, true);
      const raw = await packer.fromDisk(
        m,
        5,
        () => Promise.resolve(image.slice(5 * CHUNK, 6 * CHUNK)),
      );
      assert.equal(raw.zstd, false);
      assert.deepEqual(packer.stats().packed + packer.stats().backedUp, 0);
      const z = await packer.fromDisk(m, 0, () => Promise.resolve(image.slice(0, CHUNK)));
      assert.equal(z.zstd, true);
      assert.deepEqual(decompressChunk(z.bytes, CHUNK), image.slice(0, CHUNK));
      // Two requests for one chunk at once: compressed once.
      const read = () => Promise.resolve(image.slice(CHUNK, 2 * CHUNK));
      const [x, y] = await Promise.all([packer.fromDisk(m, 1, read), packer.fromDisk(m, 1, read)]);
      assert.equal(x, y);
      assert.equal(packer.stats().packed, 2);
    } finally {
      packer.close();
      src.close?.();
    }
  });
});

Deno.test("a PC whose kept window is gone serves a newcomer compressed chunks, or raw ones when its workers are backed up: byte-identical", async () => {
  await withSlices(async (dir, image) => {
    const src = await openSlicesSource(join(dir, "slices"));
    const m = src.manifest;
    const seed = await startChunkServer({ source: src, hostname: "127.0.0.1", port: 0 });
    const open = (name: string) => openTarget(join(dir, name), m.size, m.name);
    // Two PCs done long ago: a kept window of one chunk's bytes (a few compressed ones), and
    // none at all with its workers always busy.
    const busy = new ServePacker(1, 1, 0);
    const done = new Receiver({
      manifestBytes: src.manifestBytes,
      target: await open("done"),
      relayKeepBytes: CHUNK,
    });
    const jammed = new Receiver({
      manifestBytes: src.manifestBytes,
      target: await open("jammed"),
      relayKeepBytes: 1,
      packer: busy,
    });
    const all = [done, jammed];
    try {
      for (const pc of [done, jammed]) await pc.fetchFrom(seed.url);
      for (const [pc, name] of [[done, "new1"], [jammed, "new2"]] as const) {
        const server = await startChunkServer({ source: pc, hostname: "127.0.0.1", port: 0 });
        const newcomer = new Receiver({
          manifestBytes: src.manifestBytes,
          target: await open(name),
        });
        all.push(newcomer);
        try {
          await newcomer.fetchFrom(server.url);
          assert.deepEqual(await Deno.readFile(join(dir, name)), image, name);
          assert.equal(newcomer.stats().badChunks, 0);
          assert.deepEqual(await newcomer.readBack(), []);
        } finally {
          await server.close();
        }
      }
      const plain = sum(m, chunkLength);
      const wire = sum(m, storedLength);
      const got = all[2].stats().bytesReceived;
      assert.ok(got < plain / 2 && got < 2 * wire, `${got} bytes for ${plain} (slices ${wire})`);
      // The compressible chunks compressed but the few still kept; the raw ones not tried.
      const compressible = nonZero(m).length - 2;
      const packed = done.packStats();
      assert.ok(
        packed.packed >= compressible - 4 && packed.packed <= compressible,
        JSON.stringify(packed),
      );
      assert.equal(packed.backedUp, 0);
      // Backed up: every chunk raw, none waited for.
      assert.equal(all[3].stats().bytesReceived, plain);
      assert.equal(busy.stats().backedUp, compressible);
      assert.equal(busy.stats().packed, 0);
    } finally {
      for (const r of all) {
        r.close();
        r.target.close();
      }
      busy.close();
      await seed.close();
      src.close?.();
    }
  });
});

Deno.test("pooled chunk memory: chunks in flight at once, read in any order, each comes back its own frame", async () => {
  const packer = new ServePacker(1, 2, 8);
  try {
    // A manifest of 9 compressible chunks, the last one short (memory of a larger chunk serves it).
    const chunks = Array.from(
      { length: 9 },
      (_, i) => compressibleImage(i === 8 ? CHUNK / 3 : CHUNK, 100 + i),
    );
    const m = {
      chunks: chunks.map((c) => ({ zero: false, zstd: c.length - 1 })),
      chunkSize: CHUNK,
      size: 8 * CHUNK + chunks[8].length,
    } as unknown as Manifest;
    const rounds: Uint8Array[][] = [];
    for (let round = 0; round < 4; round++) {
      // Reads finish in reverse order, half into the memory given, half as bytes of their own.
      const got = await Promise.all(
        chunks.slice(0, 8).map((_, i) =>
          packer.fromDisk(m, i + (round % 2), async (into) => {
            const own = chunks[i + (round % 2)];
            await new Promise((r) => setTimeout(r, (8 - i) * 3));
            if (i % 2 === 0 && into) {
              assert.equal(into.length, own.length);
              into.set(own);
              return into;
            }
            return own.slice();
          })
        ),
      );
      const frames = got.map((s, i) => {
        assert.equal(s.zstd, true, `round ${round} chunk ${i}`);
        return s.bytes;
      });
      rounds.push(frames);
    }
    // Every frame of every round still the chunk it was made of: none shares pooled memory.
    for (const [round, frames] of rounds.entries()) {
      for (const [i, f] of frames.entries()) {
        const own = chunks[i + (round % 2)];
        assert.deepEqual(decompressChunk(f, own.length), own, `round ${round} chunk ${i}`);
      }
    }
    const s = packer.stats();
    assert.equal(s.packed, 32);
    assert.equal(s.backedUp, 0);
  } finally {
    packer.close();
  }
});
