import assert from "node:assert/strict";
import { join } from "node:path";
import { chunkFileName, decompressChunk, sliceImage } from "../../imagetools/mod.ts";
import { ChunkUnavailableError, openDiskSource, openSlicesSource } from "./chunk_source.ts";
import { randomImage, writeSlices } from "./testkit.ts";

const CHUNK = 64 * 1024;

Deno.test("openSlicesSource reads every chunk, zero chunks as zeros", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const image = randomImage(5 * CHUNK + 1000, [[CHUNK, 3 * CHUNK]]);
    const { manifestBytes } = await writeSlices(dir, image, CHUNK, "games.img");
    const src = await openSlicesSource(dir);
    assert.deepEqual(src.manifestBytes, manifestBytes);
    assert.equal(src.heldCount(), 6);
    assert.equal(src.has(5), true);
    assert.equal(src.has(6), false);
    for (let i = 0; i < 6; i++) {
      assert.deepEqual(await src.read(i), image.subarray(i * CHUNK, (i + 1) * CHUNK));
    }
    await assert.rejects(src.read(6), /Invalid chunk index 6 for "games.img": it has chunks 0..5/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openSlicesSource refuses a folder with a missing or short chunk file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const image = randomImage(3 * CHUNK);
    const { manifest } = await writeSlices(dir, image, CHUNK, "games.img");
    const name = chunkFileName(manifest.chunks[1]);
    await Deno.remove(join(dir, "chunks", name));
    await assert.rejects(
      openSlicesSource(dir),
      { message: `Cannot open slices "${dir}": chunks/${name} (chunk 1) is missing` },
    );
    await Deno.writeFile(join(dir, "chunks", name), new Uint8Array(10));
    await assert.rejects(
      openSlicesSource(dir),
      {
        message: `Cannot open slices "${dir}": chunks/${name} (chunk 1) holds 10 bytes, not 65536`,
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openDiskSource serves a disk holding the image; a small disk is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const image = randomImage(4 * CHUNK, [[0, CHUNK]]);
    const { manifestBytes } = await writeSlices(join(dir, "s"), image, CHUNK, "games.img");
    const disk = join(dir, "disk");
    // A disk is usually larger than the image; the tail is not served.
    await Deno.writeFile(disk, new Uint8Array([...image, 1, 2, 3]));
    const src = await openDiskSource(disk, manifestBytes);
    for (let i = 0; i < 4; i++) {
      assert.deepEqual(await src.read(i), image.subarray(i * CHUNK, (i + 1) * CHUNK));
    }
    src.close?.();
    await Deno.writeFile(disk, image.subarray(0, 100));
    await assert.rejects(openDiskSource(disk, manifestBytes), {
      message:
        `Cannot serve from "${disk}": it holds 100 B but the image "games.img" needs 256 KiB`,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openDiskSource sends the chunks the slices stored zstd compressed, the others raw", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Chunk 0 text (zstd in the slices), 1 random (raw in the slices), 2 zeros, 3 text again.
    const text = new TextEncoder().encode(
      "the quick brown fox jumps over the lazy dog. ".repeat(1500),
    );
    const image = new Uint8Array(4 * CHUNK);
    image.set(text.subarray(0, CHUNK), 0);
    image.set(randomImage(CHUNK), CHUNK);
    image.set(text.subarray(7, CHUNK + 7), 3 * CHUNK);
    const disk = join(dir, "disk");
    await Deno.writeFile(disk, image);
    const sliced = await sliceImage({ image: disk, out: join(dir, "s"), chunkSize: CHUNK });
    assert.deepEqual(sliced.manifest.chunks.map((c) => [c.zero, c.zstd !== undefined]), [
      [false, true],
      [false, false],
      [true, false],
      [false, true],
    ]);
    const src = await openDiskSource(disk, sliced.manifestBytes);
    try {
      for (const i of [0, 3, 0]) { // the second chunk 0 comes from the server's cache
        const s = await src.readStored(i);
        assert.equal(s.zstd, true);
        assert.ok(s.bytes.length < CHUNK / 10, `chunk ${i}: ${s.bytes.length} bytes`);
        assert.deepEqual(
          decompressChunk(s.bytes, CHUNK),
          image.subarray(i * CHUNK, (i + 1) * CHUNK),
        );
      }
      assert.deepEqual(await src.readStored(1), {
        zstd: false,
        bytes: image.subarray(CHUNK, 2 * CHUNK),
      });
    } finally {
      src.close?.();
    }
    // Slices without compressed chunks (format 1): a disk's chunks go as they are.
    const plain = await sliceImage({
      image: disk,
      out: join(dir, "p"),
      chunkSize: CHUNK,
      uncompressed: true,
    });
    const old = await openDiskSource(disk, plain.manifestBytes);
    assert.deepEqual(await old.readStored(0), { zstd: false, bytes: image.subarray(0, CHUNK) });
    old.close?.();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ChunkUnavailableError is an Error with its own name", () => {
  const e = new ChunkUnavailableError("x");
  assert.ok(e instanceof Error);
  assert.equal(e.name, "ChunkUnavailableError");
});
