import assert from "node:assert/strict";
import * as fs from "node:fs";
import { join } from "node:path";
import { DirectWriter, isDirectRefused, NewFileWriter } from "./direct_write.ts";
import { allocAligned, DIRECT_ALIGN, isAligned } from "./kit/mod.ts";
import { seededImage, withTempDir } from "./testkit.ts";

Deno.test("allocAligned gives zeroed buffers, shared on request, and knows their views", () => {
  const plain = allocAligned(10_000);
  assert.equal(plain.length, 10_000);
  assert.ok(plain.every((b) => b === 0));
  assert.ok(plain.buffer instanceof ArrayBuffer);
  const shared = allocAligned(3 * DIRECT_ALIGN, { shared: true });
  assert.ok(shared.buffer instanceof SharedArrayBuffer);
  assert.equal(isAligned(plain), true);
  assert.equal(isAligned(shared.subarray(DIRECT_ALIGN)), true);
  assert.equal(isAligned(shared.subarray(512)), false);
  assert.equal(isAligned(new Uint8Array(DIRECT_ALIGN)), false);
  assert.throws(() => allocAligned(-1), { name: "RangeError" });
});

/** Whether this folder's file system takes O_DIRECT (tmpfs before Linux 6.6 does not). */
function takesDirect(dir: string): boolean {
  try {
    const { O_RDWR, O_CREAT, O_DIRECT } = fs.constants;
    fs.closeSync(fs.openSync(join(dir, ".probe"), O_RDWR | O_CREAT | O_DIRECT));
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(join(dir, ".probe"), { force: true });
  }
}

// Every length class: empty, a tail only, exactly aligned, aligned head plus a tail; from
// aligned memory (written in place) and from ordinary memory (staged).
const LENGTHS = [0, 100, DIRECT_ALIGN, 3 * DIRECT_ALIGN + 100, 256 * 1024];

Deno.test("NewFileWriter writes files byte-exact, direct or buffered, synced or not, any length", () =>
  withTempDir(async (dir) => {
    for (const [direct, sync] of [[true, true], [true, false], [false, true], [false, false]]) {
      const writer = new NewFileWriter({ direct, sync });
      for (const length of LENGTHS) {
        const bytes = seededImage(length, length + 1);
        const inAligned = allocAligned(length, { shared: true });
        inAligned.set(bytes);
        const unaligned = new Uint8Array(length + 1).subarray(1);
        unaligned.set(bytes);
        for (const [what, src] of [["aligned", inAligned], ["unaligned", unaligned]] as const) {
          const path = join(dir, `${direct}-${sync}-${length}-${what}`);
          await writer.write(path, src);
          assert.deepEqual(await Deno.readFile(path), bytes, `${path}`);
        }
      }
      // Never a silent fall back to the page cache where O_DIRECT works.
      assert.equal(writer.direct, direct && takesDirect(dir));
    }
  }));

Deno.test("NewFileWriter refuses an existing file and leaves it as it was", () =>
  withTempDir(async (dir) => {
    const path = join(dir, "taken.chunk");
    await Deno.writeFile(path, new Uint8Array([1, 2, 3]));
    for (const direct of [true, false]) {
      await assert.rejects(
        new NewFileWriter({ direct }).write(path, allocAligned(DIRECT_ALIGN)),
        (err: Error & { code?: string }) => err.code === "EEXIST",
      );
      assert.deepEqual(await Deno.readFile(path), new Uint8Array([1, 2, 3]));
    }
  }));

Deno.test("DirectWriter lands writes exactly, aligned or not, with or without O_DIRECT", () =>
  withTempDir(async (dir) => {
    for (const direct of [true, false]) {
      const path = join(dir, `disk-${direct}`);
      const size = 6 * DIRECT_ALIGN + 300;
      const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
      fs.ftruncateSync(fd, size);
      let directFd = -1;
      if (direct) {
        try {
          directFd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_DIRECT);
        } catch { /* this file system refuses O_DIRECT: the buffered path is tested twice */ }
      }
      try {
        const w = new DirectWriter(fd, directFd);
        assert.equal(w.direct, directFd >= 0);
        const a = new Uint8Array(3 * DIRECT_ALIGN + 100).map((_, i) => i % 251);
        const b = allocAligned(DIRECT_ALIGN).fill(7);
        const c = new Uint8Array(50).fill(9);
        const d = new Uint8Array(DIRECT_ALIGN + 1).fill(4).subarray(1);
        // Concurrent: aligned with a tail, aligned in place, an odd offset, staged.
        await Promise.all([
          w.writeAt(0, a),
          w.writeAt(4 * DIRECT_ALIGN, b),
          w.writeAt(6 * DIRECT_ALIGN + 250, c),
          w.writeAt(5 * DIRECT_ALIGN, d),
        ]);
        const want = new Uint8Array(size);
        want.set(a, 0);
        want.set(b, 4 * DIRECT_ALIGN);
        want.set(d, 5 * DIRECT_ALIGN);
        want.set(c, 6 * DIRECT_ALIGN + 250);
        assert.deepEqual(await Deno.readFile(path), want);
      } finally {
        fs.closeSync(fd);
        if (directFd >= 0) fs.closeSync(directFd);
      }
    }
  }));

Deno.test("isDirectRefused recognises the refusal of an unaligned O_DIRECT write only", () =>
  withTempDir(async (dir) => {
    const path = join(dir, "f");
    let fd: number;
    try {
      fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DIRECT);
    } catch (err) {
      return assert.equal(isDirectRefused(err), true); // refused at open
    }
    try {
      const unaligned = new Uint8Array(DIRECT_ALIGN + 1).subarray(1);
      assert.throws(() => fs.writeSync(fd, unaligned, 0, DIRECT_ALIGN, 0), isDirectRefused);
    } finally {
      fs.closeSync(fd);
    }
    let missing: unknown;
    try {
      fs.openSync(join(dir, "nope", "f"), fs.constants.O_RDONLY);
    } catch (err) {
      missing = err;
    }
    assert.equal(isDirectRefused(missing), false);
    await Deno.remove(path);
  }));
