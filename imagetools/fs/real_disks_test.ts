// File-system-aware slicing on disks made by the real tools: the disk assembled from the slices
// passes each file system's own check, every file reads back with the golden disk's checksum,
// what is not understood (tables, MSR, gaps, NTFS backup boot sector, the GPT backup) is kept
// byte for byte, and the used bytes found equal partclone's count of the same file system.
import assert from "node:assert/strict";
import { join } from "node:path";
import { assembleImage, sliceImage, verifyImage } from "../mod.ts";
import { whyNoLoopDevices, withTempDir } from "../testkit.ts";
import { analyzeDisk, type DiskLayout } from "./analyze.ts";
import { bytesReader } from "./reader.ts";
import {
  extract,
  fileSums,
  fillPlan,
  fsck,
  makeDisk,
  makeExt4,
  makeFat,
  makeNtfs,
  makeSwap,
  type PartSpec,
  run,
} from "./testkit.ts";

const MIB = 1024 * 1024;
type Checked = "ntfs" | "ext4" | "fat";

interface Made {
  disk: string;
  parts: (PartSpec & { start: number; check?: Checked; partclone?: string })[];
}

async function windowsLike(tmp: string): Promise<Made> {
  const fat = join(tmp, "efi.img");
  const ntfs = join(tmp, "c.img");
  const ext = join(tmp, "linux.img");
  const swap = join(tmp, "swap.img");
  await makeFat(fat, 40 * MIB, 32, fillPlan(1, 9, 300_000), tmp);
  await makeNtfs(ntfs, 64 * MIB, fillPlan(2, 24, 900_000), tmp);
  await makeExt4(ext, 40 * MIB, fillPlan(3, 18, 700_000), tmp);
  await makeSwap(swap, 8 * MIB, 4);
  const specs = [
    { image: fat, size: 40 * MIB, type: "ef00", check: "fat" as const, partclone: "fat" },
    { image: null, size: 8 * MIB, type: "0c01" },
    { image: ntfs, size: 64 * MIB, type: "0700", check: "ntfs" as const, partclone: "ntfs" },
    { image: ext, size: 40 * MIB, type: "8300", check: "ext4" as const, partclone: "extfs" },
    { image: swap, size: 8 * MIB, type: "8200" },
  ];
  const disk = join(tmp, "windows.img");
  const { starts } = await makeDisk(disk, "gpt", specs);
  return { disk, parts: specs.map((p, i) => ({ ...p, start: starts[i] })) };
}

async function mbrDisk(tmp: string): Promise<Made> {
  const fat16 = join(tmp, "boot.img");
  const ext = join(tmp, "root.img");
  const swap = join(tmp, "swap2.img");
  const fat12 = join(tmp, "small.img");
  await makeFat(fat16, 16 * MIB, 16, fillPlan(5, 8, 200_000), tmp);
  await makeExt4(ext, 24 * MIB, fillPlan(6, 12, 400_000), tmp);
  await makeSwap(swap, 4 * MIB, 7);
  await makeFat(fat12, 3 * MIB, 12, fillPlan(8, 6, 60_000), tmp);
  const specs = [
    { image: fat16, size: 16 * MIB, type: "e", check: "fat" as const, partclone: "fat" },
    { image: ext, size: 24 * MIB, type: "83", check: "ext4" as const, partclone: "extfs" },
    { image: swap, size: 4 * MIB, type: "82" },
    { image: fat12, size: 3 * MIB, type: "1", check: "fat" as const },
  ];
  const disk = join(tmp, "mbr.img");
  const { starts } = await makeDisk(disk, "mbr", specs);
  return { disk, parts: specs.map((p, i) => ({ ...p, start: starts[i] })) };
}

/** A 4Kn disk (4096-byte logical sectors): its GPT header at byte 4096, every LBA in 4 KiB
 * sectors; ext4, FAT16 and NTFS made for 4096-byte sectors. */
async function disk4kn(tmp: string): Promise<Made> {
  const ext = join(tmp, "root4k.img");
  const fat = join(tmp, "boot4k.img");
  const ntfs = join(tmp, "data4k.img");
  await makeExt4(ext, 32 * MIB, fillPlan(9, 14, 500_000), tmp, ["-b", "4096"]);
  await makeFat(fat, 24 * MIB, 16, fillPlan(10, 8, 200_000), tmp, ["-S", "4096", "-s", "1"]);
  await makeNtfs(ntfs, 48 * MIB, fillPlan(11, 16, 700_000), tmp, ["-s", "4096"]);
  const specs = [
    { image: ext, size: 32 * MIB, type: "8300", check: "ext4" as const, partclone: "extfs" },
    { image: fat, size: 24 * MIB, type: "ef00", check: "fat" as const },
    { image: ntfs, size: 48 * MIB, type: "0700", check: "ntfs" as const, partclone: "ntfs" },
  ];
  const disk = join(tmp, "disk4kn.img");
  const { starts } = await makeDisk(disk, "gpt", specs, 4096);
  return { disk, parts: specs.map((p, i) => ({ ...p, start: starts[i] })) };
}

/** partclone's "Space in use" of a file system image, in bytes. */
async function partcloneUsed(kind: string, image: string, tmp: string): Promise<number> {
  const log = join(tmp, "partclone.log");
  await run(`partclone.${kind}`, ["-c", "-s", image, "-O", join(tmp, "pc.img"), "-L", log]);
  const text = await Deno.readTextFile(log);
  await Deno.remove(join(tmp, "pc.img"));
  const used = /Space in use:.*= (\d+) Blocks/.exec(text);
  const block = /Block size:\s*(\d+) Byte/.exec(text);
  if (!used || !block) throw new Error(`partclone.${kind} log has no usage: ${text}`);
  return Number(used[1]) * Number(block[1]);
}

/** Bytes of [from, to) that differ between two disks. */
function differing(a: Uint8Array, b: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) if (a[i] !== b[i]) n++;
  return n;
}

async function checkDisk(
  made: Made,
  tmp: string,
  expect: { scheme: string; fs: (string | null)[] },
) {
  const golden = await Deno.readFile(made.disk);
  const layout: DiskLayout = await analyzeDisk(bytesReader(golden), golden.length);
  assert.equal(layout.scheme, expect.scheme);
  assert.deepEqual(layout.volumes.map((v) => v.fs), expect.fs);
  for (const v of layout.volumes) {
    assert.equal(v.note, undefined, `partition ${v.number}: ${v.note}`);
  }

  const sliced = await sliceImage({ image: made.disk, out: join(tmp, "slices"), sync: false });
  assert.equal(sliced.manifest.format, 3); // layout, and chunks stored zstd
  assert.ok(sliced.manifest.chunks.some((c) => c.zstd !== undefined));
  assert.ok(sliced.storedBytes < sliced.plainBytes);
  assert.deepEqual(sliced.manifest.layout?.volumes.map((v) => v.fs), expect.fs);
  const out = join(tmp, "assembled.img");
  await assembleImage({ slices: sliced.dir, out, sync: false });
  const copy = await Deno.readFile(out);
  assert.equal(copy.length, golden.length);

  // Outside the understood partitions every byte is the golden disk's.
  const understood = made.parts.filter((_, i) => layout.volumes[i].fs !== null);
  let at = 0;
  for (const p of [...understood].sort((a, b) => a.start - b.start)) {
    assert.equal(differing(golden, copy, at, p.start), 0, `bytes ${at}..${p.start} kept`);
    at = p.start + p.size;
  }
  assert.equal(differing(golden, copy, at, golden.length), 0, "the disk's tail kept");

  for (const [i, p] of made.parts.entries()) {
    const v = layout.volumes[i];
    assert.equal(v.start, p.start);
    if (v.fs === "swap") {
      // Only the header page is kept; the stale pages are gone.
      assert.equal(differing(golden, copy, p.start, p.start + 4096), 0);
      assert.ok(copy.subarray(p.start + 4096, p.start + p.size).every((b) => b === 0));
      assert.equal(v.free, p.size - 4096);
      continue;
    }
    if (!p.check) continue;
    const g = join(tmp, `golden-${i}.img`);
    const c = join(tmp, `copy-${i}.img`);
    await extract(made.disk, p.start, p.size, g);
    await extract(out, p.start, p.size, c);
    await fsck(p.check, g);
    await fsck(p.check, c);
    const sums = await fileSums(p.check, g, tmp);
    assert.ok(Object.keys(sums).length >= 6, `partition ${i + 1} holds its files`);
    assert.deepEqual(await fileSums(p.check, c, tmp), sums);
    assert.ok(v.free > 0 && v.free < p.size, `partition ${i + 1} has free blocks`);
    if (p.partclone) {
      assert.equal(p.size - v.free, await partcloneUsed(p.partclone, g, tmp) + slack(v.fs, p.size));
    }
    if (v.fs === "ntfs") {
      const last = p.start + p.size - 512;
      assert.equal(differing(golden, copy, last, last + 512), 0, "NTFS backup boot sector kept");
    }
    await Deno.remove(g);
    await Deno.remove(c);
  }
  // Free blocks of deleted files held data: the slices are smaller than the used disk.
  assert.ok(sliced.zeroedBytes > 0);

  // A free chunk need not be written, so verify skips it: stale bytes there are fine; anywhere
  // else they are not.
  const chunks = sliced.manifest.chunks;
  const freeAt = chunks.findIndex((c) => c.free);
  const usedAt = chunks.findIndex((c) => !c.zero);
  assert.ok(freeAt >= 0 && sliced.freeChunks === chunks.filter((c) => c.free).length);
  const f = await Deno.open(out, { write: true });
  await f.seek(freeAt * sliced.manifest.chunkSize, Deno.SeekMode.Start);
  await f.write(new Uint8Array(4096).fill(0xaa));
  f.close();
  assert.deepEqual((await verifyImage({ image: out, manifest: sliced.dir })).bad, []);
  const g = await Deno.open(out, { write: true });
  await g.seek(usedAt * sliced.manifest.chunkSize + 100, Deno.SeekMode.Start);
  await g.write(new Uint8Array([1, 2, 3]));
  g.close();
  const bad = (await verifyImage({ image: out, manifest: sliced.dir })).bad;
  assert.deepEqual([...new Set(bad.map((b) => b.index))], [usedAt]);
  return { golden, sliced };
}

/** Bytes of a partition that are kept but not counted by partclone as used: the region past
 * the last whole unit (NTFS: the backup boot sector's cluster; FAT: the part-cluster tail). */
function slack(fs: string | null, size: number): number {
  void size;
  return fs === "ntfs" ? 4096 : 0;
}

Deno.test("a GPT disk (FAT32 EFI, MSR, NTFS, ext4, swap) made by the real tools slices to a disk that checks clean with every file intact", () =>
  withTempDir(async (tmp) => {
    const made = await windowsLike(tmp);
    await checkDisk(made, tmp, { scheme: "gpt", fs: ["fat32", null, "ntfs", "ext4", "swap"] });
  }));

Deno.test("an MBR disk with logical partitions (FAT16, ext4, swap, FAT12) slices likewise; --raw keeps every byte", () =>
  withTempDir(async (tmp) => {
    const made = await mbrDisk(tmp);
    const { golden } = await checkDisk(made, tmp, {
      scheme: "mbr",
      fs: ["fat16", "ext4", "swap", "fat12"],
    });
    const raw = await sliceImage({
      image: made.disk,
      out: join(tmp, "raw"),
      raw: true,
      sync: false,
    });
    assert.equal(raw.manifest.format, 3); // compressed, but no layout read
    assert.equal(raw.manifest.layout, undefined);
    assert.equal(raw.zeroedBytes, 0);
    const { createHash } = await import("node:crypto");
    assert.equal(raw.manifest.sha256, createHash("sha256").update(golden).digest("hex"));
  }));

const noLoop = await whyNoLoopDevices();
Deno.test({
  name: `a 4Kn GPT disk (4096-byte sectors: ext4, FAT16, NTFS) slices likewise${
    noLoop ? ` (ignored: ${noLoop})` : ""
  }`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const made = await disk4kn(tmp);
      const head = await Deno.readFile(made.disk);
      assert.equal(new TextDecoder().decode(head.subarray(4096, 4104)), "EFI PART");
      await checkDisk(made, tmp, { scheme: "gpt", fs: ["ext4", "fat16", "ntfs"] });
    }),
});
