// The scan's worker thread judges a real file as the main thread's scan does: right chunks
// good, an older version bad (not zeros), a never-written chunk bad and zeros, a zero chunk
// that reads as zeros good; a file that ends early is a read failure naming the byte.
import assert from "node:assert/strict";
import { join } from "node:path";
import { attachLoop, detachLoop, whyNoLoopDevices, withTempDir } from "../../imagetools/testkit.ts";
import { DELTA_BLOCK } from "./delta.ts";
import { dealRuns, diskSeeks, SCAN_RUN, scanInWorker } from "./scan_worker.ts";
import { memorySource, randomImage } from "./testkit.ts";

const CHUNK = 64 * 1024;
const SIZE = 11 * CHUNK + 5000; // 12 chunks, the last one short; chunks 3-4 zeros
const image = randomImage(SIZE, [[3 * CHUNK, 5 * CHUNK]]);
const m = memorySource(image, CHUNK, "games.img").manifest;
const all = m.chunks.map((_, i) => i);

for (const workers of [1, 2, 3]) {
  Deno.test(`scanInWorker, ${workers} worker(s): good, older and never-written chunks of a real file`, async () => {
    await withTempDir(async (dir) => {
      const disk = image.slice();
      disk.fill(0x42, 2 * CHUNK + DELTA_BLOCK, 2 * CHUNK + 2 * DELTA_BLOCK); // an older version
      disk.fill(0, 7 * CHUNK, 8 * CHUNK); // never written
      disk.fill(0x42, 11 * CHUNK + 100, 11 * CHUNK + 200); // the short last chunk, older
      const path = join(dir, "disk.img");
      await Deno.writeFile(path, disk);
      const verdicts = new Map<number, [boolean, boolean]>();
      const seen: number[] = [];
      const ran = await scanInWorker(path, m, all, {
        onChunk: (i, ok, zeros) => (seen.push(i), verdicts.set(i, [ok, zeros])),
        workers,
      });
      assert.equal(ran, true);
      assert.equal(seen.length, all.length, "each chunk judged once");
      assert.deepEqual([...verdicts.keys()].sort((a, b) => a - b), all);
      const bad = all.filter((i) => !verdicts.get(i)![0]);
      assert.deepEqual(bad, [2, 7, 11]);
      assert.deepEqual(bad.map((i) => verdicts.get(i)![1]), [false, true, false]);
    });
  });
}

Deno.test("scanInWorker: a file that ends early is a read failure at its end", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "short.img");
    await Deno.writeFile(path, image.subarray(0, 5 * CHUNK + 10));
    const seen: number[] = [];
    const err = await scanInWorker(path, m, all, { onChunk: (i) => seen.push(i), workers: 1 })
      .then(() => undefined, (e) => e);
    assert.equal(err?.reason, "read-failed");
    assert.match(err.message, /it ended at byte 327690, expected 725896/);
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
  });
});

Deno.test("scanInWorker: with a worker past the end, the error names the file's end, not its read", async () => {
  await withTempDir(async (dir) => {
    // 40 chunks: the second worker's turn starts at chunk 16, past the file's end.
    const big = randomImage(40 * CHUNK, []);
    const bm = memorySource(big, CHUNK, "big.img").manifest;
    const path = join(dir, "short.img");
    await Deno.writeFile(path, big.subarray(0, 5 * CHUNK + 10));
    const seen: number[] = [];
    const err = await scanInWorker(path, bm, bm.chunks.map((_, i) => i), {
      onChunk: (i) => seen.push(i),
      workers: 2,
    }).then(() => undefined, (e) => e);
    assert.equal(err?.reason, "read-failed");
    assert.match(err.message, /it ended at byte 327690, expected 2621440/);
    assert.ok(seen.every((i) => i < 5), `only chunks before the end were judged: ${seen}`);
  });
});

Deno.test("dealRuns: turns of SCAN_RUN chunks, in disk order, none twice", () => {
  const chunks = Array.from({ length: 2 * SCAN_RUN + 5 }, (_, i) => i);
  const [a, b] = dealRuns(chunks, 2);
  assert.deepEqual(a, [...chunks.slice(0, SCAN_RUN), ...chunks.slice(2 * SCAN_RUN)]);
  assert.deepEqual(b, chunks.slice(SCAN_RUN, 2 * SCAN_RUN));
  assert.deepEqual(dealRuns(chunks.slice(0, 3), 4), [[0, 1, 2]], "no empty parts");
  assert.deepEqual(dealRuns(chunks, 1), [chunks]);
  assert.deepEqual(dealRuns(chunks.slice(0, 7), 3, 2), [[0, 1, 6], [2, 3], [4, 5]]);
});

Deno.test("diskSeeks: a file and a missing path do not seek", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "disk.img");
    await Deno.writeFile(path, new Uint8Array(10));
    assert.equal(diskSeeks(path), false);
    assert.equal(diskSeeks(join(dir, "nothing")), false);
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

const noLoop = await whyNoLoopDevices();
Deno.test({
  name: `diskSeeks: a loop device seeks as its /sys rotational flag says${
    noLoop ? ` (ignored: ${noLoop})` : ""
  }`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (dir) => {
      const file = join(dir, "disk.img");
      await Deno.writeFile(file, new Uint8Array(1 << 20));
      const dev = await attachLoop(file);
      try {
        const flag = `/sys/block/${dev.slice("/dev/".length)}/queue/rotational`;
        for (const spins of ["1", "0"]) {
          await Deno.writeTextFile(flag, spins);
          assert.equal(diskSeeks(dev), spins === "1", `rotational ${spins}`);
        }
      } finally {
        await detachLoop(dev);
      }
    }),
});
