import assert from "node:assert/strict";
import { manifestStats, renderInfo } from "./info.ts";
import { expectedManifest, seededImage } from "./testkit.ts";

const CHUNK = 4096;
// 6 chunks: 0, 1 random; 2, 3 zero; 4 a copy of 0; 5 short (100 bytes).
const data = seededImage(5 * CHUNK + 100, 51, [[2 * CHUNK, 4 * CHUNK]]);
data.copyWithin(4 * CHUNK, 0, CHUNK);
const { manifest } = expectedManifest(data, CHUNK, "games.img");

Deno.test("manifestStats counts zero, unique and stored chunks", () => {
  assert.deepEqual(manifestStats(manifest), {
    chunks: 6,
    zeroChunks: 2,
    uniqueChunks: 3,
    storedBytes: 2 * CHUNK + 100,
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
