// The scan's worker thread judges a real file as the main thread's scan does: right chunks
// good, an older version bad (not zeros), a never-written chunk bad and zeros, a zero chunk
// that reads as zeros good; a file that ends early is a read failure naming the byte.
import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../../imagetools/testkit.ts";
import { DELTA_BLOCK } from "./delta.ts";
import { scanInWorker } from "./scan_worker.ts";
import { memorySource, randomImage } from "./testkit.ts";

const CHUNK = 64 * 1024;
const SIZE = 11 * CHUNK + 5000; // 12 chunks, the last one short; chunks 3-4 zeros
const image = randomImage(SIZE, [[3 * CHUNK, 5 * CHUNK]]);
const m = memorySource(image, CHUNK, "games.img").manifest;
const all = m.chunks.map((_, i) => i);

Deno.test("scanInWorker: good, older and never-written chunks of a real file", async () => {
  await withTempDir(async (dir) => {
    const disk = image.slice();
    disk.fill(0x42, 2 * CHUNK + DELTA_BLOCK, 2 * CHUNK + 2 * DELTA_BLOCK); // an older version
    disk.fill(0, 7 * CHUNK, 8 * CHUNK); // never written
    disk.fill(0x42, 11 * CHUNK + 100, 11 * CHUNK + 200); // the short last chunk, older
    const path = join(dir, "disk.img");
    await Deno.writeFile(path, disk);
    const verdicts = new Map<number, [boolean, boolean]>();
    const ran = await scanInWorker(path, m, all, {
      onChunk: (i, ok, zeros) => verdicts.set(i, [ok, zeros]),
    });
    assert.equal(ran, true);
    assert.deepEqual([...verdicts.keys()].sort((a, b) => a - b), all);
    const bad = all.filter((i) => !verdicts.get(i)![0]);
    assert.deepEqual(bad, [2, 7, 11]);
    assert.deepEqual(bad.map((i) => verdicts.get(i)![1]), [false, true, false]);
  });
});

Deno.test("scanInWorker: a file that ends early is a read failure at its end", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "short.img");
    await Deno.writeFile(path, image.subarray(0, 5 * CHUNK + 10));
    const seen: number[] = [];
    const err = await scanInWorker(path, m, all, { onChunk: (i) => seen.push(i) }).then(
      () => undefined,
      (e) => e,
    );
    assert.equal(err?.reason, "read-failed");
    assert.match(err.message, /it ended at byte 327690, expected 725896/);
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
  });
});

Deno.test("scanInWorker: zeros are judged unhashed, also where the manifest does not flag the chunk zero", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "disk.img");
    await Deno.writeFile(path, image);
    // A manifest of the first format had no zero flags: chunk 3 (zeros) is a chunk like any.
    const old = { ...m, chunks: m.chunks.map((c, i) => (i === 3 ? { ...c, zero: false } : c)) };
    const verdicts = new Map<number, [boolean, boolean]>();
    await scanInWorker(path, old, all, { onChunk: (i, ok, z) => verdicts.set(i, [ok, z]) });
    assert.deepEqual(verdicts.get(3), [true, false]);
    assert.ok(all.every((i) => verdicts.get(i)![0]));
    // A blank disk: every chunk with data is bad and zeros, every zero chunk good.
    await Deno.writeFile(path, new Uint8Array(image.length));
    verdicts.clear();
    await scanInWorker(path, m, all, { onChunk: (i, ok, z) => verdicts.set(i, [ok, z]) });
    for (const i of all) {
      assert.deepEqual(verdicts.get(i), m.chunks[i].zero ? [true, false] : [false, true], `${i}`);
    }
  });
});
