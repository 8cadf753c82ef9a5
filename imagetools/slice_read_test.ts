// Reading only the kept bytes of a chunk gives the very bytes a whole read with the free blocks
// zeroed gave, so the manifest of a real-tool disk is byte for byte what slicing wrote before.
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_ZSTD_LEVEL, MANIFEST_FORMAT_V3, sliceImage } from "./mod.ts";
import { openImage } from "./image_io.ts";
import { readChunk } from "./slice_read.ts";
import { expectedManifest, mulberry32, withTempDir } from "./testkit.ts";
import {
  analyzeDisk,
  bytesReader,
  type DiskLayout,
  isWhollyFree,
  keptRuns,
  zeroFreeBlocks,
} from "./fs/mod.ts";
import { fillPlan, makeDisk, makeExt4, makeSwap } from "./fs/testkit.ts";
import { serializeManifest } from "./manifest.ts";

const MIB = 1024 * 1024;

/** A disk of random bytes with two "file systems" whose used units are scattered at random. */
function scatteredLayout(size: number, seed: number): DiskLayout {
  const rand = mulberry32(seed);
  const maps = [
    { offset: 4096, unitSize: 4096, units: 300 },
    { offset: 4096 + 300 * 4096 + 1536, unitSize: 1024, units: 700 },
  ].map((m) => {
    const used = new Uint8Array(Math.ceil(m.units / 8));
    // Runs of used and free units of 1..40 units each, so gaps both under and over a read's.
    let u = 0;
    let on = false;
    while (u < m.units) {
      const run = 1 + Math.floor(rand() * 40);
      for (let k = u; k < Math.min(m.units, u + run); k++) if (on) used[k >> 3] |= 1 << (k & 7);
      u += run;
      on = !on;
    }
    return { ...m, used };
  });
  return { size, scheme: "gpt", volumes: [], maps };
}

Deno.test("keptRuns: exactly the bytes outside free units, short free gaps kept inside a run", () => {
  const size = 2 * MIB;
  const layout = scatteredLayout(size, 7);
  const zeroedAll = new Uint8Array(size).fill(1);
  zeroFreeBlocks(layout, 0, zeroedAll);
  for (const [from, to] of [[0, size], [5000, 70_000], [1_300_000, 1_900_123]]) {
    for (const gap of [0, 8192, 32 * 1024]) {
      const runs = keptRuns(layout, from, to, gap);
      const covered = new Uint8Array(to - from);
      let last = from;
      for (const [a, b] of runs) {
        assert.ok(a >= last && b > a && b <= to, `runs in order within [${from}, ${to})`);
        covered.fill(1, a - from, b - from);
        last = b;
      }
      // Every kept byte is in a run; with no gap allowed, no free byte is.
      for (let i = from; i < to; i++) {
        if (zeroedAll[i] === 1) assert.equal(covered[i - from], 1, `kept byte ${i} is read`);
        else if (gap === 0) assert.equal(covered[i - from], 0, `free byte ${i} is not read`);
      }
    }
  }
});

Deno.test("readChunk equals a whole read with free blocks zeroed, for chunks anywhere on the disk", () =>
  withTempDir(async (tmp) => {
    const size = 2 * MIB + 12_345;
    const disk = new Uint8Array(size);
    const rand = mulberry32(11);
    for (let i = 0; i < size; i++) disk[i] = 1 + Math.floor(rand() * 255);
    const path = join(tmp, "disk.img");
    await Deno.writeFile(path, disk);
    const layout = scatteredLayout(size, 3);
    const src = await openImage(path);
    try {
      for (const chunk of [64 * 1024, 100_000, MIB]) {
        for (let off = 0; off < size; off += chunk) {
          const len = Math.min(chunk, size - off);
          const want = disk.slice(off, off + len);
          const zeroed = zeroFreeBlocks(layout, off, want);
          const got = new Uint8Array(len).fill(0xee); // stale bytes must not survive
          assert.equal(await readChunk(src, layout, off, got), zeroed);
          assert.deepEqual(got, want, `chunk at ${off} (${chunk})`);
        }
      }
      // No layout (--raw): every byte as it is.
      const all = new Uint8Array(size);
      assert.equal(await readChunk(src, undefined, 0, all), 0);
      assert.deepEqual(all, disk);
    } finally {
      src.close();
    }
  }));

Deno.test("a real-tool disk's manifest is byte for byte the one a whole read with free blocks zeroed gives", () =>
  withTempDir(async (tmp) => {
    const ext = join(tmp, "root.img");
    const swap = join(tmp, "swap.img");
    await makeExt4(ext, 24 * MIB, fillPlan(21, 16, 300_000), tmp);
    await makeSwap(swap, 6 * MIB, 5);
    const disk = join(tmp, "disk.img");
    await makeDisk(disk, "gpt", [
      { image: ext, size: 24 * MIB, type: "8300" },
      { image: null, size: 2 * MIB, type: "0c01" },
      { image: swap, size: 6 * MIB, type: "8200" },
    ]);
    const golden = await Deno.readFile(disk);
    const layout = await analyzeDisk(bytesReader(golden), golden.length);
    assert.deepEqual(layout.volumes.map((v) => v.fs), ["ext4", null, "swap"]);
    const zeroed = golden.slice();
    zeroFreeBlocks(layout, 0, zeroed);
    for (const chunkSize of [64 * 1024, MIB]) {
      const sliced = await sliceImage({
        image: disk,
        out: join(tmp, `s${chunkSize}`),
        chunkSize,
        name: "disk.img",
        sync: false,
      });
      const { manifest } = expectedManifest(zeroed, chunkSize, "disk.img", {
        zstd: DEFAULT_ZSTD_LEVEL,
      });
      manifest.chunks.forEach((c, i) => {
        const from = i * chunkSize;
        if (isWhollyFree(layout, from, Math.min(golden.length, from + chunkSize))) c.free = true;
      });
      const text = serializeManifest({
        ...manifest,
        format: MANIFEST_FORMAT_V3,
        layout: { scheme: layout.scheme, volumes: layout.volumes },
      });
      assert.ok(manifest.chunks.some((c) => c.free) && manifest.chunks.some((c) => !c.zero));
      assert.equal(new TextDecoder().decode(sliced.manifestBytes), text);
    }
  }));
