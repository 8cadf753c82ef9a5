import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { sliceImage } from "./slice.ts";
import { expectedManifest, seededImage, withTempDir } from "./testkit.ts";
import { formatBadChunk, verifyChunks, verifyImage } from "./verify.ts";

const CHUNK = 4096;
const hex = (algo: string, b: Uint8Array) => createHash(algo).update(b).digest("hex");

/** A sliced 8.5-chunk image (chunk 3 zero) in `dir`; returns the bytes and paths. */
async function sliced(dir: string) {
  const data = seededImage(8 * CHUNK + 2048, 21, [[3 * CHUNK, 4 * CHUNK]]);
  const image = join(dir, "disk.img");
  await Deno.writeFile(image, data);
  const out = join(dir, "slices");
  await sliceImage({ image, out, chunkSize: CHUNK });
  return { data, image, out };
}

Deno.test("verify passes an intact image and names exactly the chunk with a flipped byte", () =>
  withTempDir(async (dir) => {
    const { data, image, out } = await sliced(dir);
    const ok = await verifyImage({ image, manifest: out });
    assert.deepEqual(ok.bad, []);
    assert.equal(ok.chunks, 9);

    const flipped = data.slice();
    flipped[5 * CHUNK + 77] ^= 0x01;
    await Deno.writeFile(image, flipped);
    const piece = (b: Uint8Array) => b.subarray(5 * CHUNK, 6 * CHUNK);
    const r = await verifyImage({ image, manifest: join(out, "manifest.json") });
    assert.deepEqual(r.bad, [
      {
        index: 5,
        offset: 5 * CHUNK,
        hash: "md5",
        expected: hex("md5", piece(data)),
        actual: hex("md5", piece(flipped)),
      },
      {
        index: 5,
        offset: 5 * CHUNK,
        hash: "sha256",
        expected: hex("sha256", piece(data)),
        actual: hex("sha256", piece(flipped)),
      },
    ]);
    assert.equal(
      formatBadChunk(r.bad[0]),
      `chunk 5 at offset 20480: expected MD5 "${hex("md5", piece(data))}", got "${
        hex("md5", piece(flipped))
      }"`,
    );
    const sha = await verifyImage({ image, manifest: out, algos: ["sha256"] });
    assert.deepEqual(sha.bad.map((b) => [b.index, b.hash]), [[5, "sha256"]]);
  }));

Deno.test("verify catches non-zero bytes where the manifest has a zero chunk", () =>
  withTempDir(async (dir) => {
    const { data, image, out } = await sliced(dir);
    const dirty = data.slice();
    dirty[3 * CHUNK + 4095] = 9;
    await Deno.writeFile(image, dirty);
    const r = await verifyImage({ image, manifest: out, algos: ["md5"] });
    assert.deepEqual(r.bad.map((b) => [b.index, b.hash, b.actual]), [
      [3, "md5", hex("md5", dirty.subarray(3 * CHUNK, 4 * CHUNK))],
    ]);
  }));

Deno.test("verify accepts a longer device but refuses a shorter image, naming both sizes", () =>
  withTempDir(async (dir) => {
    const { data, image, out } = await sliced(dir);
    const longer = new Uint8Array(data.length + 10_000);
    longer.set(data);
    longer.fill(0xee, data.length);
    await Deno.writeFile(image, longer);
    assert.deepEqual((await verifyImage({ image, manifest: out })).bad, []);

    await Deno.writeFile(image, data.subarray(0, data.length - 1));
    await assert.rejects(verifyImage({ image, manifest: out }), {
      message: `Cannot verify "${image}": it is ${
        data.length - 1
      } bytes, shorter than the manifest's ${data.length} bytes`,
    });
  }));

Deno.test("verify takes an already parsed manifest too", () =>
  withTempDir(async (dir) => {
    const { data, image } = await sliced(dir);
    const { manifest } = expectedManifest(data, CHUNK, "disk.img");
    const r = await verifyImage({ image, manifest });
    assert.deepEqual(r.bad, []);
    assert.equal(r.manifestPath, undefined);
  }));

/** An ImageReader over bytes in memory, counting the reads it serves. */
function memoryReader(bytes: Uint8Array) {
  const reads: number[] = [];
  return {
    path: "mem.img",
    size: bytes.length,
    reads,
    readAt(offset: number, into: Uint8Array) {
      reads.push(offset);
      const piece = bytes.subarray(offset, offset + into.length);
      into.set(piece);
      return Promise.resolve(piece.length);
    },
  };
}

Deno.test("verifyChunks checks any reader, all chunks or only the ones asked for", async () => {
  const data = seededImage(6 * CHUNK + 100, 23, [[2 * CHUNK, 3 * CHUNK]]);
  const { manifest } = expectedManifest(data, CHUNK, "mem.img");
  const bytes = data.slice();
  bytes[4 * CHUNK + 1] ^= 0x10;
  bytes[6 * CHUNK + 99] ^= 0x01;
  const all = memoryReader(bytes);
  const done: number[] = [];
  const bad = await verifyChunks(all, manifest, { progress: { update: (n) => void done.push(n) } });
  assert.deepEqual(bad.map((b) => [b.index, b.hash]), [
    [4, "md5"],
    [4, "sha256"],
    [6, "md5"],
    [6, "sha256"],
  ]);
  assert.equal(done.at(-1), data.length);
  assert.equal(all.reads.length, 7);

  const some = memoryReader(bytes);
  const picked = await verifyChunks(some, manifest, { indices: [5, 4, 1], algos: ["sha256"] });
  assert.deepEqual(picked.map((b) => [b.index, b.hash, b.offset]), [[4, "sha256", 4 * CHUNK]]);
  assert.deepEqual(some.reads, [5 * CHUNK, 4 * CHUNK, 1 * CHUNK]);
  assert.deepEqual(await verifyChunks(memoryReader(bytes), manifest, { indices: [] }), []);
  await assert.rejects(verifyChunks(memoryReader(bytes), manifest, { indices: [7] }), {
    name: "RangeError",
    message: `Invalid chunk index 7 for "mem.img": it has chunks 0..6`,
  });
  await assert.rejects(verifyChunks(memoryReader(bytes.subarray(0, CHUNK)), manifest), {
    message:
      `Cannot verify "mem.img": it is ${CHUNK} bytes, shorter than the manifest's ${data.length} bytes`,
  });
});
