import assert from "node:assert/strict";
import { manifestStats, renderInfo } from "./info.ts";
import { compressibleImage, expectedManifest, seededImage } from "./testkit.ts";

const CHUNK = 4096;
// 6 chunks: 0, 1 random; 2, 3 zero; 4 a copy of 0; 5 short (100 bytes).
const data = seededImage(5 * CHUNK + 100, 51, [[2 * CHUNK, 4 * CHUNK]]);
data.copyWithin(4 * CHUNK, 0, CHUNK);
const { manifest } = expectedManifest(data, CHUNK, "games.img");

Deno.test("manifestStats counts zero, unique and stored chunks", () => {
  assert.deepEqual(manifestStats(manifest), {
    chunks: 6,
    zeroChunks: 2,
    freeChunks: 0,
    uniqueChunks: 3,
    storedBytes: 2 * CHUNK + 100,
    plainBytes: 2 * CHUNK + 100,
    zstdChunks: 0,
    lastChunkLength: 100,
  });
});

Deno.test("renderInfo prints the whole summary", () => {
  const id = "ab".repeat(32);
  assert.equal(
    renderInfo(manifest, id),
    [
      "Name:                 games.img",
      "Size:                 20.1 KiB (20580 bytes)",
      "Chunk size:           4.0 KiB (4096 bytes)",
      "Chunks:               6 (the last one 100 bytes)",
      "Zero chunks:          2",
      "Unique chunks stored: 3",
      "Bytes stored:         8.1 KiB (8292 bytes)",
      `Image id:             ${id}`,
      `Image MD5:            ${manifest.md5}`,
      `Image SHA-256:        ${manifest.sha256}`,
      "",
    ].join("\n"),
  );
});

Deno.test("renderInfo of a format 3 manifest says how much zstd saved", () => {
  // Chunks 0, 1 text-like (zstd), 2 random (raw), 3 zero.
  const image = compressibleImage(4 * CHUNK, 52);
  image.set(seededImage(CHUNK, 53), 2 * CHUNK);
  image.fill(0, 3 * CHUNK);
  const m = expectedManifest(image, CHUNK, "text.img", { zstd: 3 }).manifest;
  const z = m.chunks[0].zstd! + m.chunks[1].zstd!;
  const stats = manifestStats(m);
  assert.equal(stats.storedBytes, z + CHUNK);
  assert.equal(stats.plainBytes, 3 * CHUNK);
  assert.equal(stats.zstdChunks, 2);
  const lines = renderInfo(m, "ef".repeat(32)).split("\n");
  assert.equal(lines[5], "Unique chunks stored: 3 (2 zstd, 1 raw)");
  // No whole-image MD5 unless slicing was asked for it (--image-md5): no line for it.
  assert.deepEqual(lines.slice(7, 9), [
    `Image id:             ${"ef".repeat(32)}`,
    `Image SHA-256:        ${m.sha256}`,
  ]);
  const withMd5 = expectedManifest(image, CHUNK, "text.img", { zstd: 3, imageMd5: true });
  assert.ok(
    renderInfo(withMd5.manifest, "ef".repeat(32)).includes(
      `\nImage MD5:            ${withMd5.manifest.md5}\nImage SHA-256:`,
    ),
  );
  assert.equal(
    lines[6],
    `Bytes stored:         ${
      (z + CHUNK) / 1024 < 1 ? "" : ""
    }${(((z + CHUNK) / 1024).toFixed(1))} KiB (${
      z + CHUNK
    } bytes), zstd of 12.0 KiB (12288 bytes) (${(100 * (z + CHUNK) / (3 * CHUNK)).toFixed(1)} %)`,
  );
});

Deno.test("renderInfo of a format 2 manifest shows each partition: file system, used, free", () => {
  const id = "cd".repeat(32);
  const m = {
    ...manifest,
    format: 2 as const,
    chunks: manifest.chunks.map((c, i) => i === 3 ? { ...c, free: true } : c),
    layout: {
      scheme: "gpt" as const,
      volumes: [
        {
          number: 1,
          start: 1048576,
          size: 41943040,
          type: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
          typeName: "EFI system",
          name: "EFI",
          fs: "fat32",
          free: 40000000,
        },
        { number: 2, start: 43040768, size: 8388608, type: "E3C9", fs: null, free: 0 },
        {
          number: 3,
          start: 51429376,
          size: 67108864,
          fs: "ntfs",
          note: "NTFS volume is marked dirty (not cleanly unmounted)",
          free: 0,
        },
      ],
    },
  };
  const text = renderInfo(m, id);
  assert.equal(
    text.split("\n").slice(4, 5).concat(text.split("\n").slice(10)).join("\n"),
    [
      "Zero chunks:          2 (1 wholly free)",
      "Partition table:      GPT",
      'Partition 1:          EFI system "EFI", 40.0 MiB at 1048576: fat32, 1.9 MiB used, 38.1 MiB free',
      "Partition 2:          E3C9, 8.0 MiB at 43040768: no file system understood, kept whole",
      "Partition 3:          64.0 MiB at 51429376: ntfs, kept whole (NTFS volume is marked dirty (not cleanly unmounted))",
      "",
    ].join("\n"),
  );
});
