// Slicing, verifying and assembling real block devices: loop devices over temporary files.
// Needs root and losetup; where those are missing the test is ignored and says why.
import assert from "node:assert/strict";
import { join } from "node:path";
import { assembleImage } from "./assemble.ts";
import { sliceImage } from "./slice.ts";
import {
  attachLoop as attach,
  detachLoop as detach,
  seededImage,
  whyNoLoopDevices,
  withTempDir,
} from "./testkit.ts";
import { verifyImage } from "./verify.ts";

const why = await whyNoLoopDevices();
if (why) console.log(`Ignoring the loop device test: ${why}`);

Deno.test({
  name: "slice, verify and assemble loop devices (block devices: size by seeking to the end)",
  ignore: why !== null,
  fn: () =>
    withTempDir(async (dir) => {
      const K64 = 64 * 1024;
      // 2 MiB + 5 x 4 KiB: the last 64 KiB chunk is short; chunks 3..6 are zeros.
      const data = seededImage(32 * K64 + 5 * 4096, 71, [[3 * K64, 7 * K64]]);
      const file = join(dir, "golden.img");
      await Deno.writeFile(file, data);
      const fromFile = await sliceImage({ image: file, out: join(dir, "file"), chunkSize: K64 });

      const devices: string[] = [];
      try {
        const golden = await attach(file);
        devices.push(golden);
        assert.equal((await Deno.stat(golden)).size, 0); // why sizes come from seeking
        await assert.rejects(sliceImage({ image: golden, chunkSize: K64 }), {
          message: `Cannot slice block device "${golden}" without an output folder (give --out)`,
        });
        const fromDevice = await sliceImage({
          image: golden,
          out: join(dir, "device"),
          chunkSize: K64,
          name: "golden.img",
        });
        assert.deepEqual(fromDevice.manifestBytes, fromFile.manifestBytes);
        assert.equal(fromDevice.imageId, fromFile.imageId);

        // A bigger disk full of junk: assemble writes every chunk, zeros included.
        const diskFile = join(dir, "disk.img");
        await Deno.writeFile(diskFile, new Uint8Array(data.length + 8192).fill(0xa5));
        const disk = await attach(diskFile);
        devices.push(disk);
        await assert.rejects(assembleImage({ slices: join(dir, "device"), out: disk }), {
          message: `Cannot assemble to "${disk}": it already exists (use --force to overwrite it)`,
        });
        const a = await assembleImage({ slices: join(dir, "device"), out: disk, force: true });
        assert.equal(a.blockDevice, true);
        assert.deepEqual((await verifyImage({ image: disk, manifest: join(dir, "file") })).bad, []);
        await detach(devices.pop()!);
        const written = await Deno.readFile(diskFile);
        assert.deepEqual(written.subarray(0, data.length), data);
        assert.ok(written.subarray(data.length).every((b) => b === 0xa5), "wrote past the image");
      } finally {
        for (const d of devices) await detach(d);
      }
    }),
});
