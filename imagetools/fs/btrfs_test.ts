// Btrfs made and filled by the real tools (mkfs.btrfs, the kernel's driver on a loop device):
// the disk imaged from the slices passes `btrfs check --readonly` with every file intact,
// partclone.btrfs copies nothing more than the deleted files' old extents, and a tree log to
// replay keeps it whole.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { assembleImage, sliceImage } from "../mod.ts";
import { whyNoLoopDevices, withTempDir } from "../testkit.ts";
import { crc32c } from "./crc.ts";
import { extract, fileSums, fillPlan, fsck, makeBtrfs, makeDisk, run } from "./testkit.ts";

const MIB = 1024 * 1024;
const SIZE = 256 * MIB;
const noLoop = await whyNoLoopDevices();
const ignored = noLoop ? ` (ignored: ${noLoop})` : "";

Deno.test({
  name:
    `Btrfs (DUP metadata) in a GPT partition: written, deleted, rewritten; btrfs check clean and intact after slicing${ignored}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const fs = join(tmp, "root.img");
      const plan = fillPlan(51, 24, 900_000);
      await makeBtrfs(fs, SIZE, plan, tmp);
      const disk = join(tmp, "disk.img");
      const { starts } = await makeDisk(disk, "gpt", [{ image: fs, size: SIZE, type: "8300" }]);
      const sliced = await sliceImage({ image: disk, out: join(tmp, "slices"), sync: false });
      const v = sliced.layout!.volumes[0];
      assert.deepEqual([v.fs, v.note], ["btrfs", undefined]);
      assert.ok(v.free > SIZE / 2, `${v.free} bytes free`);
      assert.ok(sliced.zeroedBytes > 0, "the deleted files' blocks held data");
      const out = join(tmp, "out.img");
      await assembleImage({ slices: sliced.dir, out, sync: false });
      const copy = join(tmp, "copy.img");
      await extract(out, starts[0], SIZE, copy);
      await fsck("btrfs", copy);
      const sums = await fileSums("btrfs", fs, tmp);
      assert.ok(Object.keys(sums).length >= 20);
      assert.deepEqual(await fileSums("btrfs", copy, tmp), sums);

      // What partclone.btrfs copies (restored onto zeros) the imaged copy holds too, except
      // bytes of the deleted files in data chunks: partclone still counts their extents used,
      // the extent tree (whose extents add up to the superblock's bytes_used) does not.
      const pc = join(tmp, "pc.img");
      await run("partclone.btrfs", ["-c", "-s", fs, "-O", pc, "-L", join(tmp, "pc.log")]);
      const restored = join(tmp, "restored.img");
      await Deno.writeFile(restored, new Uint8Array(0));
      await Deno.truncate(restored, SIZE);
      await run("partclone.btrfs", ["-r", "-s", pc, "-O", restored]);
      const [r, g, c] = await Promise.all([restored, fs, copy].map((f) => Deno.readFile(f)));
      const runs: [number, number][] = [];
      for (let i = 0; i < r.length; i++) {
        if (r[i] === 0 || c[i] === g[i]) continue;
        const last = runs.at(-1);
        if (last && last[1] === i) last[1] = i + 1;
        else runs.push([i, i + 1]);
      }
      const deleted = plan.first.filter((f) => plan.remove.includes(f.path)).map((f) =>
        Buffer.from(f.bytes)
      );
      for (const [a, b] of runs) {
        const piece = g.subarray(a, Math.min(b, a + 256));
        assert.ok(
          deleted.some((d) => d.indexOf(piece) >= 0),
          `bytes ${a}..${b} partclone copies and the slices drop are no deleted file's`,
        );
      }
    }),
});

Deno.test({
  name: `Btrfs with a tree log to replay is kept whole, and says why${ignored}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const fs = join(tmp, "log.img");
      await makeBtrfs(fs, SIZE, fillPlan(52, 3, 100_000), tmp);
      const bytes = await Deno.readFile(fs);
      // log_root: what a crash after an fsync leaves, with the superblock's checksum (CRC-32C
      // of its bytes from 32 on) made anew as the kernel writes it.
      const view = new DataView(bytes.buffer);
      view.setBigUint64(0x10000 + 0x60, 0x1234000n, true);
      view.setUint32(0x10000, crc32c(bytes.subarray(0x10000 + 32, 0x10000 + 4096)), true);
      await Deno.writeFile(fs, bytes);
      const sliced = await sliceImage({ image: fs, out: join(tmp, "slices"), sync: false });
      assert.deepEqual(sliced.layout!.volumes.map((v) => [v.fs, v.note, v.free]), [[
        "btrfs",
        "Btrfs has a tree log to replay (mount and unmount it first)",
        0,
      ]]);
    }),
});
