import assert from "node:assert/strict";
import { join } from "node:path";
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
