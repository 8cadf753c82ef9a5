import assert from "node:assert/strict";
import { join } from "node:path";
import { allocAligned } from "../../imagetools/kit/mod.ts";
import { openTarget } from "./target_disk.ts";

Deno.test("openTarget creates a missing file at the image size, reading as zeros", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "disk");
    const t = await openTarget(path, 100_000, "games.img");
    assert.equal(t.size, 100_000);
    assert.equal(t.fresh, true);
    assert.equal(t.isBlockDevice, false);
    await t.writeAt(99_998, new Uint8Array([7, 8]));
    const back = new Uint8Array(4);
    assert.equal(await t.readAt(99_996, back), 4);
    assert.deepEqual(back, new Uint8Array([0, 0, 7, 8]));
    assert.equal(await t.readAt(99_999, back), 1);
    await t.sync();
    t.close();
    const bytes = await Deno.readFile(path);
    assert.equal(bytes.length, 100_000);
    assert.equal(bytes[99_998], 7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openTarget extends an empty file and keeps a large one's bytes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const empty = join(dir, "empty");
    await Deno.writeFile(empty, new Uint8Array(0));
    const t = await openTarget(empty, 5000, "games.img");
    assert.equal(t.fresh, true);
    t.close();
    assert.equal((await Deno.stat(empty)).size, 5000);

    const big = join(dir, "big");
    await Deno.writeFile(big, new Uint8Array(6000).fill(9));
    const u = await openTarget(big, 5000, "games.img");
    assert.equal(u.fresh, false);
    assert.equal(u.size, 6000);
    u.close();
    assert.deepEqual(await Deno.readFile(big), new Uint8Array(6000).fill(9));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openTarget refuses a smaller non-empty target before writing anything", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "vda");
    const old = new Uint8Array(64 * 1024).fill(5);
    await Deno.writeFile(path, old);
    await assert.rejects(openTarget(path, 256 * 1024, "games.img"), {
      name: "RangeError",
      message:
        `Cannot use target "${path}": it holds 64.0 KiB but the image "games.img" needs 256 KiB`,
    });
    assert.deepEqual(await Deno.readFile(path), old);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openTarget refuses a directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(openTarget(dir, 4096, "games.img"), {
      message: `Cannot use target "${dir}": it is neither a block device nor a regular file`,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writes land exactly, through O_DIRECT or the page cache, aligned or not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const direct of [true, false]) {
      const path = join(dir, `disk-${direct}`);
      const t = await openTarget(path, 5 * 4096 + 300, "games.img", { direct });
      if (!direct) assert.equal(t.direct, false);
      const a = new Uint8Array(3 * 4096 + 100).map((_, i) => i % 251);
      const b = new Uint8Array(4096).fill(7);
      const c = new Uint8Array(50).fill(9);
      // Concurrent: one aligned with a tail, one aligned, one at an odd offset.
      await Promise.all([t.writeAt(0, a), t.writeAt(4 * 4096, b), t.writeAt(5 * 4096 + 250, c)]);
      await t.sync();
      t.close();
      const want = new Uint8Array(5 * 4096 + 300);
      want.set(a, 0);
      want.set(b, 4 * 4096);
      want.set(c, 5 * 4096 + 250);
      assert.deepEqual(await Deno.readFile(path), want);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// A loop device stands in for /dev/sda: sized by seeking (stat says 0), refused when small,
// written through O_DIRECT. Needs root and losetup; ignored (and says why) without them.
async function losetup(...args: string[]): Promise<string | null> {
  try {
    const r = await new Deno.Command("losetup", { args, stdout: "piped", stderr: "null" }).output();
    return r.success ? new TextDecoder().decode(r.stdout).trim() : null;
  } catch {
    return null;
  }
}
const noLoop = Deno.uid() !== 0
  ? "not root"
  : (await losetup("--version")) === null
  ? "no losetup"
  : null;
if (noLoop) console.error(`target_disk_test: loop device test ignored: ${noLoop}`);

Deno.test({
  name: "openTarget sizes a block device, refuses a small one, writes a large one",
  ignore: noLoop !== null,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const devices: string[] = [];
    try {
      const backing = join(dir, "backing");
      await Deno.writeFile(backing, new Uint8Array(1024 * 1024).fill(3));
      const dev = await losetup("--find", "--show", backing);
      if (!dev) return assert.fail("Cannot attach a loop device");
      devices.push(dev);
      assert.equal((await Deno.stat(dev)).size, 0);
      await assert.rejects(openTarget(dev, 2 * 1024 * 1024, "games.img"), {
        message:
          `Cannot use target "${dev}": it holds 1.0 MiB but the image "games.img" needs 2.0 MiB`,
      });
      const t = await openTarget(dev, 512 * 1024, "games.img");
      assert.equal(t.isBlockDevice, true);
      assert.equal(t.size, 1024 * 1024);
      assert.equal(t.fresh, false);
      await t.writeAt(65536, new Uint8Array(65536 + 100).fill(8));
      await t.sync();
      t.close();
      const want = new Uint8Array(1024 * 1024).fill(3);
      want.fill(8, 65536, 2 * 65536 + 100);
      assert.deepEqual(await Deno.readFile(backing), want);
    } finally {
      for (const d of devices) await losetup("--detach", d);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "openTarget refuses a block device that is mounted, naming where",
  ignore: noLoop !== null,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const backing = join(dir, "backing");
    await Deno.writeFile(backing, new Uint8Array(0));
    await Deno.truncate(backing, 8 * 1024 * 1024);
    const mkfs = await new Deno.Command("mkfs.ext4", { args: ["-q", backing], stderr: "null" })
      .output();
    assert.ok(mkfs.success, "mkfs.ext4");
    const dev = await losetup("--find", "--show", backing);
    if (!dev) return assert.fail("Cannot attach a loop device");
    const mnt = join(dir, "mnt");
    await Deno.mkdir(mnt);
    try {
      const mount = await new Deno.Command("mount", { args: [dev, mnt] }).output();
      assert.ok(mount.success, "mount");
      try {
        await assert.rejects(openTarget(dev, 1024 * 1024, "games.img"), {
          message:
            `Cannot use target "${dev}": ${dev} is mounted read-write on ${mnt} (writing under a mounted file system corrupts it; unmount it first)`,
        });
      } finally {
        await new Deno.Command("umount", { args: [mnt] }).output();
      }
      (await openTarget(dev, 1024 * 1024, "games.img")).close();
    } finally {
      await losetup("--detach", dev);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("readAt into aligned memory reads the disk around the cache, the unaligned tail too", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const size = 3 * 65536 + 1000; // the last bytes are not a whole 4 KiB block
    const image = new Uint8Array(size).map((_, i) => (i * 7 + (i >> 12)) & 255);
    const t = await openTarget(join(dir, "disk"), size, "games.img");
    await t.writeAt(0, image);
    for (const [at, length] of [[0, 65536], [65536, 2 * 65536 + 1000], [4096, 100]]) {
      const into = allocAligned(length);
      assert.equal(await t.readAt(at, into), length);
      assert.deepEqual(into, image.subarray(at, at + length));
    }
    // Past the end: what there is.
    const into = allocAligned(65536);
    assert.equal(await t.readAt(3 * 65536, into), 1000);
    assert.deepEqual(into.subarray(0, 1000), image.subarray(3 * 65536));
    t.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
