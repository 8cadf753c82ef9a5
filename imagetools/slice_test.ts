import assert from "node:assert/strict";
import { join } from "node:path";
import { assembleImage } from "./assemble.ts";
import { imageIdOf, storedFileName } from "./manifest.ts";
import { sliceImage } from "./slice.ts";
import {
  compressibleImage,
  expectedManifest,
  listDir,
  seededImage,
  withTempDir,
} from "./testkit.ts";
import { decompressChunk, DEFAULT_ZSTD_LEVEL } from "./zstd_chunks.ts";

interface Case {
  what: string;
  image: Uint8Array;
  chunkSize: number;
}

const K64 = 64 * 1024;

function withDuplicate(image: Uint8Array, from: number, to: number, length: number) {
  image.copyWithin(to, from, from + length);
  return image;
}

const CASES: Case[] = [
  {
    what: "random data with zero runs, a repeated chunk and a short last chunk",
    // Chunks 2..5 zero, chunk 7 partly zero, chunk 8 a copy of chunk 0, last chunk 1234 bytes.
    image: withDuplicate(
      seededImage(10 * K64 + 1234, 11, [[2 * K64, 6 * K64], [7 * K64 + 100, 7 * K64 + 900]]),
      0,
      8 * K64,
      K64,
    ),
    chunkSize: K64,
  },
  { what: "an image smaller than one chunk", image: seededImage(5000, 12), chunkSize: 1 << 20 },
  {
    what: "a chunk size that is not a power of two",
    image: seededImage(23_456, 13, [[5000, 10_000]]),
    chunkSize: 5000,
  },
  {
    what: "a short last chunk that is all zeros",
    image: seededImage(3 * 4096 + 10, 14, [[3 * 4096, 3 * 4096 + 10]]),
    chunkSize: 4096,
  },
  {
    what: "text-like data (stored zstd) beside random chunks (stored raw) and zeros",
    image: (() => {
      const img = compressibleImage(12 * K64 + 777, 21);
      img.set(seededImage(2 * K64, 22), 3 * K64); // random: does not shrink
      img.fill(0, 6 * K64, 8 * K64);
      img.copyWithin(10 * K64, K64, 2 * K64); // a repeated compressed chunk
      return img;
    })(),
    chunkSize: K64,
  },
];

const WAYS = [
  ["uncompressed", false, false, true],
  ["zstd", true, false, true],
  ["zstd, with the whole image's MD5", true, true, true],
  ["zstd, without the whole image's SHA-256", true, false, false],
] as const;

for (const c of CASES) {
  for (const [how, compressed, imageMd5, imageSha256] of WAYS) {
    Deno.test(
      `slice -> assemble round trip (${how}): ${c.what}`,
      () => roundTrip(c, compressed, imageMd5, imageSha256),
    );
  }
}

function roundTrip(c: Case, compressed: boolean, imageMd5: boolean, imageSha256: boolean) {
  return withTempDir(async (dir) => {
    const image = join(dir, "golden.img");
    await Deno.writeFile(image, c.image);
    const out = join(dir, "slices");
    const r = await sliceImage({
      image,
      out,
      chunkSize: c.chunkSize,
      uncompressed: !compressed,
      imageMd5,
      imageSha256,
    });

    // The manifest on disk is exactly what an in-memory oracle computes: the whole image's
    // MD5 in it uncompressed (formats 1 and 2 carry it) or when asked for.
    const want = expectedManifest(
      c.image,
      c.chunkSize,
      "golden.img",
      compressed ? { zstd: DEFAULT_ZSTD_LEVEL, imageMd5, imageSha256 } : {},
    );
    assert.equal(r.manifest.md5 !== undefined, !compressed || imageMd5);
    assert.equal(r.manifest.sha256 !== undefined, !compressed || imageSha256);
    const text = await Deno.readTextFile(join(out, "manifest.json"));
    assert.equal(text, want.text);
    assert.deepEqual(r.manifest, want.manifest);
    assert.equal(r.imageId, imageIdOf(text));

    // One file per distinct non-zero chunk, holding that chunk's bytes (compressed when
    // that made them smaller: <sha256>.zst, else <sha256>.chunk).
    const unique = new Map<string, number>();
    want.manifest.chunks.forEach((e, i) =>
      !e.zero && !unique.has(e.sha256) && unique.set(e.sha256, i)
    );
    assert.deepEqual(
      await listDir(join(out, "chunks")),
      [...unique.values()].map((i) => storedFileName(want.manifest.chunks[i])).sort(),
    );
    for (const i of unique.values()) {
      const entry = want.manifest.chunks[i];
      const plain = c.image.subarray(i * c.chunkSize, (i + 1) * c.chunkSize);
      const file = await Deno.readFile(join(out, "chunks", storedFileName(entry)));
      if (entry.zstd !== undefined) {
        assert.equal(file.length, entry.zstd);
        assert.deepEqual(decompressChunk(file, plain.length), plain);
      } else assert.deepEqual(file, plain);
    }
    if (compressed && c.what.startsWith("text-like")) {
      assert.ok(want.manifest.chunks.some((e) => e.zstd !== undefined), "some chunk is zstd");
      assert.ok(want.manifest.chunks.some((e) => e.raw), "some chunk is raw");
      assert.ok(r.storedBytes < r.plainBytes / 2, `${r.storedBytes} of ${r.plainBytes}`);
    }
    assert.equal(r.storedChunks, unique.size);
    assert.equal(r.zeroChunks, want.manifest.chunks.filter((e) => e.zero).length);
    assert.deepEqual(await listDir(dir), ["golden.img", "slices"]); // no temporary left over

    const rebuilt = join(dir, "rebuilt.img");
    const a = await assembleImage({ slices: out, out: rebuilt });
    assert.equal(a.imageId, r.imageId);
    assert.deepEqual(await Deno.readFile(rebuilt), c.image);
    assert.deepEqual(await listDir(dir), ["golden.img", "rebuilt.img", "slices"]);
  });
}

Deno.test("assemble leaves zero chunks as holes in a regular file", () =>
  withTempDir(async (dir) => {
    const image = join(dir, "holes.img");
    const data = seededImage(16 * K64, 15, [[K64, 15 * K64]]);
    await Deno.writeFile(image, data);
    await sliceImage({ image, out: join(dir, "s"), chunkSize: K64 });
    await assembleImage({ slices: join(dir, "s"), out: join(dir, "back.img") });
    const st = await Deno.stat(join(dir, "back.img"));
    assert.equal(st.size, data.length);
    assert.deepEqual(await Deno.readFile(join(dir, "back.img")), data);
    // 14 of 16 chunks are holes: far fewer blocks than the size.
    assert.ok(st.blocks! * 512 <= 4 * K64, `${st.blocks} blocks allocated`);
  }));

Deno.test("slice refuses an empty image, with a clear error", () =>
  withTempDir(async (dir) => {
    const image = join(dir, "empty.img");
    await Deno.writeFile(image, new Uint8Array(0));
    await assert.rejects(sliceImage({ image }), {
      message: `Cannot slice "${image}": the image is empty`,
    });
    assert.deepEqual(await listDir(dir), ["empty.img"]);
  }));

Deno.test("slice writes <image>.cascade by default and replaces it only with force", () =>
  withTempDir(async (dir) => {
    const image = join(dir, "g.img");
    await Deno.writeFile(image, seededImage(9000, 16));
    const first = await sliceImage({ image, chunkSize: 4096 });
    assert.equal(first.dir, join(dir, "g.img.cascade"));
    await assert.rejects(sliceImage({ image, chunkSize: 4096 }), {
      message:
        `Cannot slice "${image}": output "${first.dir}" already exists (use --force to replace it)`,
    });

    await Deno.writeFile(image, seededImage(9000, 17));
    const second = await sliceImage({ image, chunkSize: 4096, force: true, name: "renamed" });
    assert.notEqual(second.imageId, first.imageId);
    assert.equal(
      await Deno.readTextFile(join(first.dir, "manifest.json")),
      expectedManifest(seededImage(9000, 17), 4096, "renamed", { zstd: DEFAULT_ZSTD_LEVEL }).text,
    );
    assert.equal((await listDir(join(first.dir, "chunks"))).length, 3); // old chunks are gone
    assert.deepEqual(await listDir(dir), ["g.img", "g.img.cascade"]);
  }));

Deno.test("slice --force will not replace a folder that is not slices", () =>
  withTempDir(async (dir) => {
    const image = join(dir, "g.img");
    await Deno.writeFile(image, seededImage(5000, 18));
    const precious = join(dir, "home");
    await Deno.mkdir(precious);
    await Deno.writeTextFile(join(precious, "thesis.tex"), "years of work");
    await assert.rejects(sliceImage({ image, out: precious, force: true }), {
      message:
        `Cannot replace "${precious}": it is not a slices folder (no manifest.json); remove it yourself`,
    });
    assert.equal(await Deno.readTextFile(join(precious, "thesis.tex")), "years of work");
    assert.deepEqual(await listDir(dir), ["g.img", "home"]);
  }));

Deno.test("slice refuses a bad chunk size or name before writing anything", () =>
  withTempDir(async (dir) => {
    const image = join(dir, "g.img");
    await Deno.writeFile(image, seededImage(5000, 19));
    await assert.rejects(sliceImage({ image, chunkSize: 100 }), {
      name: "RangeError",
      message: "Invalid chunk size 100: must be 4096..268435456 bytes",
    });
    await assert.rejects(sliceImage({ image, name: "a\nb" }), {
      name: "RangeError",
      message: 'Invalid name "a\\nb": must be 1..255 printable characters',
    });
    assert.deepEqual(await listDir(dir), ["g.img"]);
  }));
