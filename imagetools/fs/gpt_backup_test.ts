import assert from "node:assert/strict";
import * as fs from "node:fs";
import { type BlockIo, moveGptBackup, planGptMove } from "./gpt_backup.ts";
import { attachLoop, detachLoop, whyNoLoopDevices } from "../testkit.ts";

const MiB = 1024 * 1024;

function fileIo(path: string): BlockIo & { close(): void } {
  const fd = fs.openSync(path, "r+");
  return {
    size: fs.fstatSync(fd).size,
    readAt: (offset, into) => Promise.resolve(fs.readSync(fd, into, 0, into.length, offset)),
    writeAt: (offset, bytes) => {
      fs.writeSync(fd, bytes, 0, bytes.length, offset);
      return Promise.resolve();
    },
    sync: () => Promise.resolve(fs.fsyncSync(fd)),
    close: () => fs.closeSync(fd),
  };
}

/** Move the backup of the GPT on file `img`; it must say it moved it from sector `from` to `to`. */
async function movedOnFile(img: string, from: number, to: number) {
  const io = fileIo(img);
  try {
    assert.deepEqual(await moveGptBackup(io, img), {
      moved: true,
      message: `GPT of "${img}": backup moved from sector ${from} to the disk's end (${to})`,
    });
  } finally {
    io.close();
  }
}

async function run(cmd: string, ...args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

// sgdisk (Debian's gdisk, in scripts/install_packages.sh) makes the table and checks the result.
Deno.test({
  name: "moveGptBackup: a disk bigger than the image ends with a valid GPT (sgdisk -v clean)",
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const img = `${dir}/disk.img`;
      // The image: 4 MiB, GPT with two partitions and some bytes in them.
      await Deno.writeFile(img, crypto.getRandomValues(new Uint8Array(65536)));
      await Deno.truncate(img, 4 * MiB);
      const made = await run(
        "sgdisk",
        "-o",
        "-n",
        "1:2048:+1M",
        "-t",
        "1:ef00",
        "-n",
        "2:0:0",
        img,
      );
      assert.equal(made.code, 0, made.out);
      const before = await Deno.readFile(img);
      const table = (await run("sgdisk", "-p", img)).out.replace(/^Disk .*$/gm, "");
      // The PC's disk is 8 MiB: the backup is where the image ended.
      await Deno.truncate(img, 8 * MiB);
      const stale = await run("sgdisk", "-v", img);
      assert.match(stale.out, /secondary header|backup/i, "sgdisk sees the misplaced backup");

      await movedOnFile(img, 8191, 16383);
      const verify = await run("sgdisk", "-v", img);
      assert.equal(verify.code, 0, verify.out);
      assert.match(verify.out, /No problems found/, verify.out);
      assert.doesNotMatch(verify.out, /warning|problem:/i, verify.out);
      const after = await Deno.readFile(img);
      // Every byte of the image is unchanged but the primary header (sector 1).
      assert.deepEqual(after.subarray(0, 512), before.subarray(0, 512));
      assert.deepEqual(after.subarray(1024, 4 * MiB), before.subarray(1024, 4 * MiB));
      assert.notDeepEqual(after.subarray(512, 1024), before.subarray(512, 1024));
      // The same partitions (the last usable sector grows, as with sgdisk -e).
      const moved = (await run("sgdisk", "-p", img)).out.replace(/^Disk .*$/gm, "");
      const parts = (t: string) => t.slice(t.indexOf("Number"));
      assert.equal(parts(moved), parts(table));
      // Run again: nothing to do.
      const io2 = fileIo(img);
      assert.equal((await moveGptBackup(io2, img)).moved, false);
      io2.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("planGptMove: no GPT, a backup at the end already, bad CRCs", () => {
  const none = planGptMove(new Uint8Array(512), new Uint8Array(0), 8 * MiB);
  assert.deepEqual(none, { action: "none", why: "no GPT on the disk" });
  const header = new Uint8Array(512);
  header.set(new TextEncoder().encode("EFI PART"));
  const v = new DataView(header.buffer);
  v.setUint32(12, 92, true);
  v.setUint32(16, 0xdeadbeef, true);
  assert.throws(() => planGptMove(header, new Uint8Array(0), 8 * MiB), {
    name: "RangeError",
    message: /^Bad GPT header: CRC32 deadbeef recorded, [0-9a-f]+ computed$/,
  });
});

Deno.test("moveGptBackup: a disk without a partition table is left alone", async () => {
  const disk = new Uint8Array(MiB);
  const io: BlockIo = {
    size: disk.length,
    readAt: (o, into) => {
      into.set(disk.subarray(o, o + into.length));
      return Promise.resolve(into.length);
    },
    writeAt: () => Promise.reject(new Error("nothing may be written")),
    sync: () => Promise.resolve(),
  };
  assert.deepEqual(await moveGptBackup(io, "/dev/vda"), {
    moved: false,
    message: '"/dev/vda" has no GPT: nothing to move',
  });
});

const noLoop = await whyNoLoopDevices();
Deno.test({
  name: `moveGptBackup: a 4Kn disk (4096-byte sectors) bigger than the image ends with a valid GPT${
    noLoop ? ` (ignored: ${noLoop})` : ""
  }`,
  ignore: noLoop !== null,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const img = `${dir}/disk4kn.img`;
      await Deno.writeFile(img, crypto.getRandomValues(new Uint8Array(65536)));
      await Deno.truncate(img, 8 * MiB);
      // sgdisk writes a 4Kn table only through a device of 4096-byte sectors.
      const sgdisk = async (...args: string[]) => {
        const dev = await attachLoop(img, 4096);
        try {
          return await run("sgdisk", ...args, dev);
        } finally {
          await detachLoop(dev);
        }
      };
      const made = await sgdisk("-o", "-n", "1:256:+1M", "-t", "1:ef00", "-n", "2:0:0");
      assert.equal(made.code, 0, made.out);
      const before = await Deno.readFile(img);
      assert.equal(new TextDecoder().decode(before.subarray(4096, 4104)), "EFI PART");
      await Deno.truncate(img, 16 * MiB);
      await movedOnFile(img, 2047, 4095); // in 4 KiB sectors
      const verify = await sgdisk("-v");
      assert.equal(verify.code, 0, verify.out);
      assert.match(verify.out, /No problems found/, verify.out);
      const after = await Deno.readFile(img);
      assert.deepEqual(after.subarray(0, 4096), before.subarray(0, 4096), "sector 0 unchanged");
      assert.deepEqual(after.subarray(8192, 8 * MiB - 4096), before.subarray(8192, 8 * MiB - 4096));
      assert.equal(
        new TextDecoder().decode(after.subarray(16 * MiB - 4096, 16 * MiB - 4088)),
        "EFI PART",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
