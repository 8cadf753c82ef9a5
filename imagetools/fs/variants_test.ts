// The used-block maps on file-system variants made by the real tools (block and cluster sizes,
// ext2/ext3, uninit_bg without flex_bg, bigalloc, FAT32 with large clusters): with the free
// blocks zeroed the file system checks clean and every file reads back the same; the used bytes
// equal partclone's count. A journal that needs recovery keeps the file system whole.
import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../testkit.ts";
import { analyzeDisk, zeroFreeBlocks } from "./analyze.ts";
import { bytesReader } from "./reader.ts";
import { fileSums, fillPlan, fsck, makeExt4, makeFat, makeNtfs, run } from "./testkit.ts";

const MIB = 1024 * 1024;

async function partcloneUsed(kind: string, image: string, tmp: string): Promise<number> {
  const log = join(tmp, "partclone.log");
  const out = join(tmp, "pc.img");
  await run(`partclone.${kind}`, ["-c", "-s", image, "-O", out, "-L", log]);
  const text = await Deno.readTextFile(log);
  await Deno.remove(out);
  const used = /Space in use:.*= (\d+) Blocks/.exec(text);
  const block = /Block size:\s*(\d+) Byte/.exec(text);
  if (!used || !block) throw new Error(`partclone.${kind} log has no usage: ${text}`);
  return Number(used[1]) * Number(block[1]);
}

/** Zero the free blocks of a file-system image in a copy; check it and its files. */
async function zeroAndCheck(
  image: string,
  kind: "ext4" | "fat" | "ntfs",
  fs: string,
  tmp: string,
  partclone?: string,
  tail = 0,
) {
  const bytes = await Deno.readFile(image);
  const layout = await analyzeDisk(bytesReader(bytes), bytes.length);
  assert.deepEqual(layout.volumes.map((v) => [v.fs, v.note]), [[fs, undefined]]);
  const copy = bytes.slice();
  const zeroed = zeroFreeBlocks(layout, 0, copy);
  assert.equal(zeroed, layout.volumes[0].free);
  assert.ok(zeroed > 0 && zeroed < bytes.length);
  const out = join(tmp, "zeroed.img");
  await Deno.writeFile(out, copy);
  await fsck(kind, out);
  const sums = await fileSums(kind, image, tmp);
  assert.ok(Object.keys(sums).length >= 6);
  assert.deepEqual(await fileSums(kind, out, tmp), sums);
  if (partclone) {
    assert.equal(bytes.length - zeroed, (await partcloneUsed(partclone, image, tmp)) + tail);
  }
}

const EXT_VARIANTS: [string, string, string[], boolean][] = [
  ["ext2, 1 KiB blocks", "ext2", ["-t", "ext2", "-b", "1024"], true],
  ["ext3, 2 KiB blocks", "ext3", ["-t", "ext3", "-b", "2048"], true],
  ["ext4, 4 KiB blocks", "ext4", ["-b", "4096"], true],
  ["ext4, uninit_bg without flex_bg or metadata_csum", "ext4", [
    "-O",
    "^flex_bg,^metadata_csum,uninit_bg",
  ], true],
  ["ext4 without a journal, sparse_super2, no resize inode", "ext4", [
    "-O",
    "^has_journal,sparse_super2,^resize_inode",
  ], true],
  ["ext4, 64bit off, 1 KiB blocks, 256-byte inodes, few inodes", "ext4", [
    "-O",
    "^64bit",
    "-b",
    "1024",
    "-I",
    "256",
    "-N",
    "64",
  ], true],
  ["ext4, metadata_csum_seed", "ext4", ["-O", "metadata_csum_seed"], true],
  [
    "ext4, bigalloc with 1 KiB blocks (first data block 0, descriptors in block 2)",
    "ext4",
    ["-b", "1024", "-O", "bigalloc", "-C", "16384"],
    false,
  ],
  [
    "ext4, bigalloc with 16 KiB clusters",
    "ext4",
    ["-b", "4096", "-O", "bigalloc", "-C", "16384"],
    false,
  ],
];

for (const [label, fs, args, withPartclone] of EXT_VARIANTS) {
  Deno.test(`${label}: free blocks zeroed, e2fsck clean, files intact, used as partclone counts`, () =>
    withTempDir(async (tmp) => {
      const image = join(tmp, "ext.img");
      await makeExt4(image, 48 * MIB, fillPlan(11, 14, 500_000), tmp, args);
      await zeroAndCheck(image, "ext4", fs, tmp, withPartclone ? "extfs" : undefined);
    }));
}

Deno.test("ext4 whose journal needs recovery is kept whole, and says why", () =>
  withTempDir(async (tmp) => {
    const image = join(tmp, "ext.img");
    await makeExt4(image, 16 * MIB, fillPlan(12, 3, 100_000), tmp);
    await run("debugfs", ["-w", "-R", "feature needs_recovery", image]);
    const bytes = await Deno.readFile(image);
    const layout = await analyzeDisk(bytesReader(bytes), bytes.length);
    assert.deepEqual(layout.maps, []);
    assert.deepEqual(layout.volumes.map((v) => [v.fs, v.note, v.free]), [
      ["ext4", "ext4 journal needs recovery (not cleanly unmounted)", 0],
    ]);
  }));

Deno.test("ext4 with meta_bg (group descriptors spread over the disk) is kept whole, and says why", () =>
  withTempDir(async (tmp) => {
    const image = join(tmp, "ext.img");
    await makeExt4(image, 16 * MIB, fillPlan(16, 3, 100_000), tmp, ["-O", "meta_bg,^resize_inode"]);
    const bytes = await Deno.readFile(image);
    const layout = await analyzeDisk(bytesReader(bytes), bytes.length);
    assert.deepEqual(layout.maps, []);
    assert.deepEqual(layout.volumes.map((v) => [v.fs, v.note, v.free]), [
      ["ext4", "ext4 with meta_bg", 0],
    ]);
  }));

for (
  const [state, note, partclone] of [
    [0, "ext4 was not cleanly unmounted (run e2fsck on the golden disk)", /not cleanly unmounted/],
    [3, "ext4 has errors recorded (run e2fsck on the golden disk)", /with errors/],
  ] as const
) {
  Deno.test(`ext4 in state ${state} is kept whole, and says why, as partclone refuses it`, () =>
    withTempDir(async (tmp) => {
      const image = join(tmp, "ext.img");
      await makeExt4(image, 16 * MIB, fillPlan(14, 3, 100_000), tmp);
      await run("debugfs", ["-w", "-R", `ssv state ${state}`, image]);
      const bytes = await Deno.readFile(image);
      const layout = await analyzeDisk(bytesReader(bytes), bytes.length);
      assert.deepEqual(layout.maps, []);
      assert.deepEqual(layout.volumes.map((v) => [v.fs, v.note, v.free]), [["ext4", note, 0]]);
      const log = join(tmp, "partclone.log");
      const pc = await new Deno.Command("partclone.extfs", {
        args: ["-c", "-s", image, "-O", join(tmp, "pc.img"), "-L", log],
        stdout: "null",
        stderr: "null",
      }).output();
      assert.equal(pc.success, false);
      assert.match(await Deno.readTextFile(log), partclone);
    }));
}

for (
  const [bits, label, flip, note] of [
    [
      16,
      "the boot sector's dirty bit (Linux, mounted)",
      "boot",
      "was not cleanly unmounted (its boot sector's dirty bit is set",
    ],
    [
      32,
      "the boot sector's dirty bit (Linux, mounted)",
      "boot",
      "was not cleanly unmounted (its boot sector's dirty bit is set",
    ],
    [
      16,
      "FAT[1]'s clean bit cleared (Windows, mounted)",
      "fat",
      "was not cleanly unmounted (FAT[1]'s clean bit is clear",
    ],
    [
      32,
      "FAT[1]'s clean bit cleared (Windows, mounted)",
      "fat",
      "was not cleanly unmounted (FAT[1]'s clean bit is clear",
    ],
    [32, "FAT[1]'s disk error bit", "error", "recorded a disk I/O error (FAT[1]'s error bit"],
  ] as const
) {
  Deno.test(`FAT${bits} with ${label} is kept whole, and says why`, () =>
    withTempDir(async (tmp) => {
      const image = join(tmp, "fat.img");
      await makeFat(image, 40 * MIB, bits, fillPlan(15, 4, 100_000), tmp);
      const clean = await Deno.readFile(image);
      assert.equal((await analyzeDisk(bytesReader(clean), clean.length)).maps.length, 1);
      const bytes = clean.slice();
      const v = new DataView(bytes.buffer);
      const fat1 = v.getUint16(0x0e, true) * 512 + (bits === 32 ? 4 : 2);
      if (flip === "boot") bytes[bits === 32 ? 0x41 : 0x25] |= 1;
      else if (bits === 32) {
        v.setUint32(
          fat1,
          v.getUint32(fat1, true) & ~(flip === "fat" ? 0x08000000 : 0x04000000),
          true,
        );
      } else v.setUint16(fat1, v.getUint16(fat1, true) & ~0x8000, true);
      const layout = await analyzeDisk(bytesReader(bytes), bytes.length);
      assert.deepEqual(layout.maps, []);
      assert.deepEqual(layout.volumes.map((v) => [v.fs, v.note, v.free]), [[
        `fat${bits}`,
        `FAT${bits} volume ${note}; run fsck.vfat or chkdsk on the golden disk)`,
        0,
      ]]);
      await Deno.writeFile(image, bytes);
      const fsck = await new Deno.Command("fsck.vfat", { args: ["-n", image] }).output();
      const said = new TextDecoder().decode(fsck.stdout);
      // fsck.fat reads both dirty bits (and leaves the error bit to chkdsk's surface scan).
      if (flip !== "error") assert.match(said, /Dirty bit is set/);
    }));
}

Deno.test("FAT32 whose two FAT copies differ: a cluster either copy names is kept", () =>
  withTempDir(async (tmp) => {
    const image = join(tmp, "fat.img");
    await makeFat(image, 40 * MIB, 32, fillPlan(17, 4, 100_000), tmp);
    const bytes = await Deno.readFile(image);
    const v = new DataView(bytes.buffer);
    const fatAt = v.getUint16(0x0e, true) * 512;
    const fatBytes = v.getUint32(0x24, true) * 512;
    const dataAt = fatAt + 2 * fatBytes;
    const clusterSize = bytes[0x0d] * 512;
    // The first data cluster past the root directory's that a file holds (non-zero bytes).
    let c = 3;
    while (v.getUint32(fatAt + 4 * c, true) === 0 || bytes[dataAt + (c - 2) * clusterSize] === 0) {
      c++;
    }
    const entry = (copy: number) => fatAt + copy * fatBytes + 4 * c;
    const zeroedAt = (b: Uint8Array) => {
      const layout = analyzeDisk(bytesReader(b), b.length);
      return layout.then((l) => {
        const out = b.slice();
        zeroFreeBlocks(l, 0, out);
        return out.subarray(dataAt + (c - 2) * clusterSize, dataAt + (c - 1) * clusterSize);
      });
    };
    const cluster = bytes.slice(dataAt + (c - 2) * clusterSize, dataAt + (c - 1) * clusterSize);
    for (const copy of [0, 1]) {
      const one = bytes.slice();
      new DataView(one.buffer).setUint32(entry(copy), 0, true);
      assert.deepEqual(await zeroedAt(one), cluster, `FAT copy ${copy} says free, the other used`);
    }
    const both = bytes.slice();
    new DataView(both.buffer).setUint32(entry(0), 0, true);
    new DataView(both.buffer).setUint32(entry(1), 0, true);
    assert.ok((await zeroedAt(both)).every((b) => b === 0), "free in both: zeroed");
  }));

for (const cluster of [1024, 65536]) {
  Deno.test(`NTFS with ${cluster}-byte clusters: ntfsfix clean, files intact, used as partclone counts`, () =>
    withTempDir(async (tmp) => {
      const image = join(tmp, "ntfs.img");
      await makeNtfs(image, 48 * MIB, fillPlan(13, 12, 600_000), tmp, ["-c", String(cluster)]);
      // Past the last whole cluster: the backup boot sector's cluster, kept.
      await zeroAndCheck(image, "ntfs", "ntfs", tmp, "ntfs", cluster);
    }));
}

Deno.test("FAT32 with 1 KiB clusters: fsck.vfat clean, files intact, used as partclone counts", () =>
  withTempDir(async (tmp) => {
    const image = join(tmp, "fat.img");
    await makeFat(image, 80 * MIB, 32, fillPlan(14, 10, 400_000), tmp, ["-s", "2"]);
    // mkfs.vfat rounds the volume down to whole tracks: the sectors past it are kept.
    const boot = new DataView((await Deno.readFile(image)).buffer, 0, 512);
    const tail = 80 * MIB - boot.getUint32(0x20, true) * 512;
    await zeroAndCheck(image, "fat", "fat32", tmp, "fat", tail);
  }));
