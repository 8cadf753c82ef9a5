// exFAT made by mkfs.exfat and filled through exfat-fuse: the disk imaged from the slices
// passes fsck.exfat -n with every file intact, the used bytes match partclone.exfat, and a
// volume marked dirty is kept whole.
import assert from "node:assert/strict";
import { join } from "node:path";
import { assembleImage, sliceImage } from "../mod.ts";
import { whyNoLoopDevices, withTempDir } from "../testkit.ts";
import { extract, fileSums, fillPlan, fsck, makeDisk, makeExfat, run } from "./testkit.ts";

const MIB = 1024 * 1024;
const noLoop = await whyNoLoopDevices();
const ignored = noLoop ? ` (ignored: ${noLoop})` : "";

Deno.test({
  name:
    `exFAT in an MBR partition: written, deleted, rewritten; fsck clean and intact after slicing${ignored}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const fs = join(tmp, "data.img");
      const size = 64 * MIB;
      await makeExfat(fs, size, fillPlan(41, 14, 500_000), tmp);
      const disk = join(tmp, "disk.img");
      const { starts } = await makeDisk(disk, "mbr", [{ image: fs, size, type: "7" }]);
      const sliced = await sliceImage({ image: disk, out: join(tmp, "slices"), sync: false });
      const v = sliced.layout!.volumes[0];
      assert.deepEqual([v.fs, v.note], ["exfat", undefined]);
      assert.ok(v.free > 0 && v.free < size);
      assert.ok(sliced.zeroedBytes > 0, "the deleted files' clusters held data");
      const out = join(tmp, "out.img");
      await assembleImage({ slices: sliced.dir, out, sync: false });
      const copy = join(tmp, "copy.img");
      await extract(out, starts[0], size, copy);
      await fsck("exfat", copy);
      const sums = await fileSums("exfat", fs, tmp);
      assert.ok(Object.keys(sums).length >= 10);
      assert.deepEqual(await fileSums("exfat", copy, tmp), sums);

      // partclone's "Space in use" is two clusters more than its bitmap (clusters 0 and 1,
      // which do not exist); what it copies is what the slices keep: every byte it restores
      // that is not zero, the imaged copy holds as the golden disk does.
      const log = join(tmp, "partclone.log");
      const pc = join(tmp, "pc.img");
      await run("partclone.exfat", ["-c", "-s", fs, "-O", pc, "-L", log]);
      const text = await Deno.readTextFile(log);
      const used = Number(/Space in use:.*= (\d+) Blocks/.exec(text)![1]);
      const block = Number(/Block size:\s*(\d+) Byte/.exec(text)![1]);
      const boot = (await Deno.readFile(fs)).subarray(0, 512);
      const cluster = 2 ** boot[108] * 2 ** boot[109]; // bytes per sector and per cluster, as shifts
      assert.equal(size - v.free + 2 * cluster, used * block);
      const restored = join(tmp, "restored.img");
      await Deno.writeFile(restored, new Uint8Array(0));
      await Deno.truncate(restored, size);
      await run("partclone.exfat", ["-r", "-s", pc, "-O", restored]);
      const [r, g, c] = await Promise.all([restored, fs, copy].map((f) => Deno.readFile(f)));
      let missing = 0;
      for (let i = 0; i < r.length; i++) if (r[i] !== 0 && c[i] !== g[i]) missing++;
      assert.equal(missing, 0, "bytes partclone copies that the slices dropped");
    }),
});

Deno.test({
  name: `exFAT marked dirty is kept whole, and says why${ignored}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const fs = join(tmp, "dirty.img");
      await makeExfat(fs, 32 * MIB, fillPlan(42, 3, 100_000), tmp);
      const bytes = await Deno.readFile(fs);
      bytes[106] |= 0x2; // VolumeFlags: VolumeDirty, as a mount that never ended leaves it
      await Deno.writeFile(fs, bytes);
      const sliced = await sliceImage({ image: fs, out: join(tmp, "slices"), sync: false });
      assert.deepEqual(sliced.layout!.volumes.map((v) => [v.fs, v.note, v.free]), [[
        "exfat",
        "exFAT volume is marked dirty (not cleanly unmounted; run fsck.exfat)",
        0,
      ]]);
    }),
});
