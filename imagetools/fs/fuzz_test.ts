// Metadata with random bytes changed (as bit rot, a bad sector or a hostile golden disk leaves
// it): analyzeDisk never throws and never hangs on it, and on the file systems whose metadata
// carries checksums (ext4 with metadata_csum, XFS v5, Btrfs) and on FAT (two copies of the FAT
// that must both say free) it never counts free a byte the unchanged disk keeps. The changes
// land in the bytes the parsers read (each read of the clean disk is recorded), most of them in
// a read's first 512 bytes, where the headers are. NTFS, exFAT, ext2 and partitioned disks are
// only checked for not throwing: those bitmaps carry no checksum (a cleared bit there is a free
// block to Cascade as to partclone), and a changed partition entry moves what it names.
import assert from "node:assert/strict";
import { join } from "node:path";
import { analyzeDisk, keptRuns } from "./mod.ts";
import {
  fillPlan,
  makeBtrfs,
  makeDisk,
  makeExfat,
  makeExt4,
  makeFat,
  makeNtfs,
  makeSwap,
  makeXfs,
} from "./testkit.ts";
import { mulberry32, whyNoLoopDevices, withTempDir } from "../testkit.ts";

const MIB = 1024 * 1024;
const ROUNDS = 150;
const noLoop = await whyNoLoopDevices();

/** Bytes of runs `a` that runs `b` do not cover (both sorted, disjoint). */
function uncovered(a: [number, number][], b: [number, number][]): number {
  let n = 0;
  let j = 0;
  for (const [s, e] of a) {
    while (j < b.length && b[j][1] <= s) j++;
    let at = s;
    for (let k = j; at < e; k++) {
      if (k >= b.length || b[k][0] >= e) {
        n += e - at;
        break;
      }
      if (b[k][0] > at) n += b[k][0] - at;
      at = Math.max(at, b[k][1]);
    }
  }
  return n;
}

async function fuzz(image: string, seed: number, noLoss: boolean) {
  const img = await Deno.readFile(image);
  const reads: [number, number][] = [];
  const reader = (record: boolean) => (offset: number, length: number) => {
    if (offset < 0 || length < 0 || offset + length > img.length) {
      return Promise.reject(new RangeError(`Cannot read ${length} bytes at ${offset}`));
    }
    if (record) reads.push([offset, length]);
    return Promise.resolve(img.slice(offset, offset + length));
  };
  const clean = await analyzeDisk(reader(true), img.length);
  assert.ok(clean.maps.length > 0, `${image}: ${JSON.stringify(clean.volumes)}`);
  const kept = keptRuns(clean, 0, img.length);
  const random = mulberry32(seed);
  const pick = (n: number) => Math.floor(random() * n);
  const failures: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const changed: [number, number][] = [];
    for (let k = 1 + pick(4); k > 0; k--) {
      const [offset, length] = reads[pick(reads.length)];
      const at = offset + pick(random() < 0.7 ? Math.min(length, 512) : length);
      const r = random();
      changed.push([at, img[at]]);
      img[at] = r < 0.3 ? pick(256) : r < 0.5 ? 0 : r < 0.7 ? 0xff : (img[at] + 1) & 255;
    }
    try {
      const layout = await analyzeDisk(reader(false), img.length);
      const lost = uncovered(kept, keptRuns(layout, 0, img.length));
      if (noLoss && lost > 0) {
        failures.push(
          `${image} round ${round} (${
            JSON.stringify(changed)
          }): ${lost} kept bytes would be zeroed`,
        );
      }
    } catch (err) {
      failures.push(`${image} round ${round} (bytes ${changed.map((c) => c[0])}): ${err}`);
    }
    for (const [at, was] of changed.reverse()) img[at] = was;
  }
  assert.deepEqual(failures, []);
}

Deno.test("fuzzed ext4 (metadata_csum), ext2, FAT32 and NTFS metadata: nothing throws; ext4 and FAT lose nothing", () =>
  withTempDir(async (tmp) => {
    const plan = fillPlan(41, 16, 200_000);
    const ext4 = join(tmp, "ext4.img");
    await makeExt4(ext4, 48 * MIB, plan, tmp);
    await fuzz(ext4, 1, true);
    const ext2 = join(tmp, "ext2.img");
    await makeExt4(ext2, 32 * MIB, plan, tmp, ["-t", "ext2"]);
    await fuzz(ext2, 2, false);
    const fat = join(tmp, "fat.img");
    await makeFat(fat, 48 * MIB, 32, plan, tmp);
    await fuzz(fat, 3, true);
    const ntfs = join(tmp, "ntfs.img");
    await makeNtfs(ntfs, 48 * MIB, plan, tmp);
    await fuzz(ntfs, 4, false);
  }));

Deno.test("fuzzed partition tables (GPT, MBR with logical partitions) and what they hold: nothing throws", () =>
  withTempDir(async (tmp) => {
    const plan = fillPlan(43, 6, 100_000);
    const fat = join(tmp, "fat.img");
    await makeFat(fat, 16 * MIB, 16, plan, tmp);
    const ext = join(tmp, "ext.img");
    await makeExt4(ext, 16 * MIB, plan, tmp, ["-t", "ext2"]);
    const swap = join(tmp, "swap.img");
    await makeSwap(swap, 2 * MIB, 44);
    for (const [k, scheme] of (["gpt", "mbr"] as const).entries()) {
      const disk = join(tmp, `${scheme}.img`);
      await makeDisk(disk, scheme, [
        { image: fat, size: 16 * MIB, type: scheme === "gpt" ? "ef00" : "0e" },
        { image: swap, size: 2 * MIB, type: scheme === "gpt" ? "8200" : "82" },
        { image: ext, size: 16 * MIB, type: scheme === "gpt" ? "8300" : "83" },
      ]);
      await fuzz(disk, 7 + k, false);
    }
  }));

Deno.test({
  name: `fuzzed exFAT metadata: nothing throws${noLoop ? ` (ignored: ${noLoop})` : ""}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const exfat = join(tmp, "exfat.img");
      await makeExfat(exfat, 48 * MIB, fillPlan(45, 12, 200_000), tmp);
      await fuzz(exfat, 9, false);
    }),
});

Deno.test({
  name: `fuzzed XFS v5 and Btrfs metadata: nothing throws, nothing kept is lost${
    noLoop ? ` (ignored: ${noLoop})` : ""
  }`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const plan = fillPlan(42, 16, 300_000);
      const xfs = join(tmp, "xfs.img");
      await makeXfs(xfs, 300 * MIB, plan, tmp);
      await fuzz(xfs, 5, true);
      const btrfs = join(tmp, "btrfs.img");
      await makeBtrfs(btrfs, 128 * MIB, plan, tmp);
      await fuzz(btrfs, 6, true);
    }),
});
