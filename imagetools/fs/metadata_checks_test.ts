// File-system metadata that fails its own checks is kept whole, not trusted with a free map:
// on ext2/3/4 a used block cleared in a block bitmap (caught by metadata_csum's bitmap
// checksum, or on ext2 by the descriptor's free count), a descriptor or superblock byte changed
// (their checksums); on XFS v5 and Btrfs a superblock or tree block changed (CRC-32C, SHA-256).
// The real tools make the volumes; the flips are single bits or bytes, as bit rot or a bad
// sector leaves them.
import assert from "node:assert/strict";
import { join } from "node:path";
import { analyzeDisk, bytesReader } from "./mod.ts";
import { fillPlan, makeBtrfs, makeExt4, makeFat, makeXfs } from "./testkit.ts";
import { seededImage, whyNoLoopDevices, withTempDir } from "../testkit.ts";
import { sliceImage, sliceSummary } from "../mod.ts";

const MIB = 1024 * 1024;
const BLOCK = 4096;

async function volume(tmp: string, mkfsArgs: string[]): Promise<Uint8Array> {
  const image = join(tmp, "ext.img");
  await makeExt4(image, 16 * MIB, fillPlan(31, 4, 200_000), tmp, [
    "-b",
    String(BLOCK),
    ...mkfsArgs,
  ]);
  return await Deno.readFile(image);
}

/** Clear the last set bit of group 0's block bitmap (a block in use now reads as free). */
function clearUsedBit(bytes: Uint8Array) {
  const desc = new DataView(bytes.buffer, BLOCK); // 4 KiB blocks: descriptors in block 1
  const bitmap = bytes.subarray(desc.getUint32(0, true) * BLOCK).subarray(0, BLOCK);
  const at = bitmap.findLastIndex((b) => b !== 0 && b !== 0xff);
  const i = at >= 0 ? at : bitmap.findLastIndex((b) => b !== 0);
  bitmap[i] &= bitmap[i] - 1;
}

async function keptWhole(bytes: Uint8Array): Promise<[string | null, string | undefined]> {
  const layout = await analyzeDisk(bytesReader(bytes), bytes.length);
  assert.deepEqual(layout.maps, []);
  assert.equal(layout.volumes[0].free, 0);
  return [layout.volumes[0].fs, layout.volumes[0].note];
}

Deno.test("ext4 (metadata_csum): a used block cleared in a bitmap fails the bitmap's checksum and is kept whole", () =>
  withTempDir(async (tmp) => {
    const bytes = await volume(tmp, []);
    assert.equal((await analyzeDisk(bytesReader(bytes), bytes.length)).maps.length, 1);
    clearUsedBit(bytes);
    const [fs, note] = await keptWhole(bytes);
    assert.equal(fs, "ext4");
    assert.match(
      note!,
      /^ext4 group 0's block bitmap fails its checksum \(0x[0-9a-f]{8} stored, 0x[0-9a-f]{8} computed\)$/,
    );
  }));

Deno.test("ext2 (no checksums): a used block cleared in a bitmap disagrees with the free count and is kept whole", () =>
  withTempDir(async (tmp) => {
    const bytes = await volume(tmp, ["-t", "ext2"]);
    assert.equal((await analyzeDisk(bytesReader(bytes), bytes.length)).maps.length, 1);
    clearUsedBit(bytes);
    const [fs, note] = await keptWhole(bytes);
    assert.equal(fs, "ext2");
    assert.match(
      note!,
      /^ext2 group 0's block bitmap has (\d+) free clusters, its descriptor says (\d+)$/,
    );
    const [, counted, said] = note!.match(/has (\d+) .* says (\d+)/)!.map(Number);
    assert.equal(counted, said + 1);
  }));

Deno.test("ext4 (uninit_bg): a changed descriptor fails its CRC-16 and is kept whole", () =>
  withTempDir(async (tmp) => {
    const bytes = await volume(tmp, ["-O", "^metadata_csum,uninit_bg"]);
    assert.equal((await analyzeDisk(bytesReader(bytes), bytes.length)).maps.length, 1);
    bytes[BLOCK + 0x0e] ^= 0x01; // group 0's free inodes count
    const [, note] = await keptWhole(bytes);
    assert.match(
      note!,
      /^ext4 group 0's descriptor fails its checksum \(0x[0-9a-f]{4} stored, 0x[0-9a-f]{4} computed\)$/,
    );
  }));

Deno.test("ext4 (metadata_csum): a changed descriptor or superblock fails its checksum and is kept whole", () =>
  withTempDir(async (tmp) => {
    const clean = await volume(tmp, []);
    const desc = clean.slice();
    desc[BLOCK + 0x0c] ^= 0x01; // group 0's free blocks count
    assert.match((await keptWhole(desc))[1]!, /^ext4 group 0's descriptor fails its checksum/);
    const sb = clean.slice();
    sb[1024 + 0x78] ^= 0x20; // a letter of the volume name
    assert.match(
      (await keptWhole(sb))[1]!,
      /^ext4 superblock fails its checksum \(0x[0-9a-f]{8} stored, 0x[0-9a-f]{8} computed\)$/,
    );
  }));

const noLoop = await whyNoLoopDevices();
const ignored = noLoop ? ` (ignored: ${noLoop})` : "";
const be32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at);

Deno.test({
  name:
    `XFS v5: a changed superblock, AGF or free-space record fails its CRC and is kept whole${ignored}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const image = join(tmp, "xfs.img");
      await makeXfs(image, 320 * MIB, fillPlan(32, 6, 400_000), tmp);
      const clean = await Deno.readFile(image);
      assert.equal((await analyzeDisk(bytesReader(clean), clean.length)).maps.length, 1);
      const blockSize = be32(clean, 4);
      const sect = clean[102] * 256 + clean[103];
      const sb = clean.slice();
      sb[108] ^= 0x20; // a letter of the label
      assert.deepEqual(await keptWhole(sb), ["xfs", "XFS superblock fails its CRC"]);
      const agf = clean.slice();
      const ag1 = be32(clean, 84) * blockSize;
      agf[ag1 + sect + 100] ^= 0x01; // AG 1's AGF, in its spare words
      assert.deepEqual(await keptWhole(agf), ["xfs", "XFS AG 1's AGF fails its CRC"]);
      // AG 0's free-space root, its first record's start moved by one block: the count still
      // adds up, only the CRC tells that used blocks would be zeroed.
      const root = be32(clean, sect + 16);
      const rec = clean.slice();
      rec[root * blockSize + 56 + 3] ^= 0x01;
      assert.deepEqual(await keptWhole(rec), [
        "xfs",
        `XFS AG 0 free-space tree block ${root} fails its CRC`,
      ]);
    }),
});

Deno.test({
  name:
    `Btrfs: a SHA-256 volume is understood; a changed superblock or tree block fails its checksum and is kept whole${ignored}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      for (const csum of ["crc32c", "sha256"]) {
        const image = join(tmp, `btrfs-${csum}.img`);
        await makeBtrfs(image, 160 * MIB, fillPlan(33, 8, 400_000), tmp, ["--csum", csum]);
        const clean = await Deno.readFile(image);
        const layout = await analyzeDisk(bytesReader(clean), clean.length);
        assert.deepEqual([layout.volumes[0].fs, layout.volumes[0].note], ["btrfs", undefined]);
        assert.ok(layout.volumes[0].free > 60 * MIB, `${layout.volumes[0].free} bytes free`);
        const sb = clean.slice();
        sb[0x10000 + 0x12b] ^= 0x20; // a letter of the label
        assert.deepEqual(await keptWhole(sb), ["btrfs", "Btrfs superblock fails its checksum"]);
        // Every tree block (its fsid at byte 32), one byte in its items changed.
        const fsid = clean.subarray(0x10020, 0x10030);
        const nodeSize = new DataView(clean.buffer).getUint32(0x10094, true);
        const trees = clean.slice();
        let changed = 0;
        for (let at = 0x100000; at + nodeSize <= trees.length; at += nodeSize) {
          if (!fsid.every((x, i) => trees[at + 32 + i] === x)) continue;
          trees[at + 120] ^= 0x01;
          changed++;
        }
        assert.ok(changed >= 4, `${changed} tree blocks`);
        const [fs, note] = await keptWhole(trees);
        assert.equal(fs, "btrfs");
        assert.match(note!, /^Btrfs tree block at \d+ fails its checksum$/);
      }
    }),
});

Deno.test("FAT32 whose boot sector says a wrong FAT size or a fixed root directory is kept whole", () =>
  withTempDir(async (tmp) => {
    const image = join(tmp, "fat.img");
    await makeFat(image, 48 * MIB, 32, fillPlan(34, 6, 200_000), tmp);
    const clean = await Deno.readFile(image);
    assert.equal((await analyzeDisk(bytesReader(clean), clean.length)).maps.length, 1);
    const size = clean.slice();
    const v = new DataView(size.buffer);
    v.setUint32(0x24, v.getUint32(0x24, true) + 1, true); // FATSz32 one sector more
    const [fs, note] = await keptWhole(size);
    assert.equal(fs, "fat32");
    assert.match(
      note!,
      /^FAT32 copy 2 does not start with the media byte \(FAT\[0\] is 0x[0-9a-f]+, not 0xffffff8\): the boot sector's FAT size may be wrong$/,
    );
    const root = clean.slice();
    new DataView(root.buffer).setUint16(0x11, 512, true);
    assert.deepEqual(await keptWhole(root), [
      "fat32",
      "FAT32 boot sector names a fixed root directory (512 entries) or a 16-bit FAT size (0 sectors), which FAT32 has not",
    ]);
  }));

Deno.test("a slice of a file system kept whole records it with the reason, and its summary says so", () =>
  withTempDir(async (tmp) => {
    const clean = await volume(tmp, []);
    clean[1024 + 0x78] ^= 0x20;
    const image = join(tmp, "bad.img");
    await Deno.writeFile(image, clean);
    const r = await sliceImage({ image, out: join(tmp, "bad"), sync: false });
    const v = r.manifest.layout!.volumes[0];
    assert.deepEqual([v.number, v.fs, v.free], [0, "ext4", 0]);
    assert.match(v.note!, /^ext4 superblock fails its checksum/);
    assert.equal(
      sliceSummary(r).split("\n")[0],
      `Whole disk: 16.0 MiB at 0: ext4, kept whole (${v.note})`,
    );
    // Random bytes: nothing to say, as before (no layout, no partition line).
    const noise = join(tmp, "noise.img");
    await Deno.writeFile(noise, seededImage(4 * MIB, 65));
    const n = await sliceImage({ image: noise, out: join(tmp, "noise"), sync: false });
    assert.equal(n.manifest.layout, undefined);
    assert.match(sliceSummary(n), /^Sliced "noise.img"/);
  }));
