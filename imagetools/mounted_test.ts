// A disk in use is neither sliced nor written: a loop device holding a GPT disk whose ext4
// partition is mounted (read-write, then read-only) and whose swap partition is swapped on,
// and a Btrfs on a whole loop device (mountinfo names it by an anonymous device number).
import assert from "node:assert/strict";
import { join } from "node:path";
import { assembleImage, sliceImage } from "./mod.ts";
import { devNumber, mountsOn } from "./mounted.ts";
import { attachLoop, detachLoop, whyNoLoopDevices, withTempDir } from "./testkit.ts";
import { fillPlan, makeBtrfs, makeDisk, makeExt4, makeSwap, run } from "./fs/testkit.ts";

const MIB = 1024 * 1024;
const noLoop = await whyNoLoopDevices();
const ignored = noLoop ? ` (ignored: ${noLoop})` : "";

Deno.test("devNumber reads Linux's dev_t as major:minor, minors past 255 included", () => {
  assert.equal(devNumber(0x0801), "8:1");
  assert.equal(devNumber(259 << 8), "259:0");
  assert.equal(devNumber((7 << 8) | 44 | (256 << 12)), "7:300");
});

Deno.test({
  name:
    `slice and assemble refuse a disk whose partition is mounted or swapped on, naming it${ignored}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const ext = join(tmp, "ext.img");
      await makeExt4(ext, 16 * MIB, fillPlan(61, 3, 100_000), tmp);
      const swap = join(tmp, "swap.img");
      await makeSwap(swap, 4 * MIB, 62);
      const disk = join(tmp, "disk.img");
      await makeDisk(disk, "gpt", [
        { image: ext, size: 16 * MIB, type: "8300" },
        { image: swap, size: 4 * MIB, type: "8200" },
      ]);
      const golden = await sliceImage({ image: disk, out: join(tmp, "golden"), sync: false });
      const dev = await attachLoop(disk);
      const dir = join(tmp, "mnt");
      await Deno.mkdir(dir);
      let mounted = false;
      let swapped = false;
      try {
        await run("partx", ["-a", dev]);
        await run("mount", [`${dev}p1`, dir]);
        mounted = true;
        assert.deepEqual(await mountsOn(dev), [
          { device: `${dev}p1`, where: dir, readOnly: false },
        ]);
        const out = join(tmp, "slices");
        await assert.rejects(
          sliceImage({ image: dev, out, sync: false }),
          new Error(
            `Cannot slice "${dev}": ${dev}p1 is mounted read-write on ${dir} (a file system in use changes while it is read, and its free-block map with it; unmount it or remount it read-only first)`,
          ),
        );
        const write = () =>
          assembleImage({ slices: golden.dir, out: dev, force: true, sync: false });
        await assert.rejects(
          write(),
          new Error(
            `Cannot assemble to "${dev}": ${dev}p1 is mounted read-write on ${dir} (writing under a mounted file system corrupts it; unmount it first)`,
          ),
        );

        // Read-only: slicing reads a file system that cannot change; writing still refuses.
        await run("mount", ["-o", "remount,ro", dir]);
        const sliced = await sliceImage({ image: dev, out, sync: false });
        const v = sliced.layout!.volumes.find((v) => v.number === 1)!;
        assert.deepEqual([v.fs, v.note], ["ext4", undefined]);
        await assert.rejects(write(), /p1 is mounted read-only on /);
        await run("umount", [dir]);
        mounted = false;

        // Swap on: slicing keeps only the swap header anyway; writing refuses.
        await run("swapon", [`${dev}p2`]);
        swapped = true;
        await sliceImage({ image: dev, out, force: true, sync: false });
        await assert.rejects(
          write(),
          new Error(
            `Cannot assemble to "${dev}": ${dev}p2 is in use as swap (writing under a mounted file system corrupts it; unmount it first)`,
          ),
        );
        await run("swapoff", [`${dev}p2`]);
        swapped = false;
        await write();
      } finally {
        if (mounted) await run("umount", [dir]).catch(() => {});
        if (swapped) await run("swapoff", [`${dev}p2`]).catch(() => {});
        await run("partx", ["-d", dev]).catch(() => {});
        await detachLoop(dev);
      }
    }),
});

/** Attach `image` to a loop device, mount it, run `mounted`, unmount, run `unmounted`, detach. */
async function onLoop(
  image: string,
  tmp: string,
  mounted: (dev: string, dir: string) => Promise<void>,
  unmounted: (dev: string) => Promise<unknown>,
) {
  const dev = await attachLoop(image);
  const dir = join(tmp, "mnt");
  await Deno.mkdir(dir);
  try {
    await run("mount", [dev, dir]);
    try {
      await mounted(dev, dir);
    } finally {
      await run("umount", [dir]);
    }
    await unmounted(dev);
  } finally {
    await detachLoop(dev);
  }
}

Deno.test({
  name: `a Btrfs mounted on a whole device is found by its source path${ignored}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const image = join(tmp, "btrfs.img");
      await makeBtrfs(image, 128 * MIB, fillPlan(63, 2, 50_000), tmp);
      await onLoop(image, tmp, async (dev, dir) => {
        assert.deepEqual(await mountsOn(dev), [{ device: dev, where: dir, readOnly: false }]);
        await assert.rejects(
          sliceImage({ image: dev, out: join(tmp, "s"), sync: false }),
          /is mounted read-write on /,
        );
      }, async (dev) => assert.deepEqual(await mountsOn(dev), []));
    }),
});

Deno.test({
  name: `an image file mounted through a loop device is neither sliced nor written${ignored}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const image = join(tmp, "golden.img");
      await makeExt4(image, 16 * MIB, fillPlan(64, 3, 100_000), tmp);
      const golden = await sliceImage({ image, out: join(tmp, "golden"), sync: false });
      await onLoop(image, tmp, async (dev, dir) => {
        await assert.rejects(
          sliceImage({ image, out: join(tmp, "s"), sync: false }),
          new Error(
            `Cannot slice "${image}": ${dev} is mounted read-write on ${dir} (a file system in use changes while it is read, and its free-block map with it; unmount it or remount it read-only first)`,
          ),
        );
        await assert.rejects(
          assembleImage({ slices: golden.dir, out: image, force: true, sync: false }),
          /^Error: Cannot assemble to ".*golden\.img": \/dev\/loop\d+ is mounted read-write on /,
        );
      }, () => sliceImage({ image, out: join(tmp, "s"), sync: false }));
    }),
});
