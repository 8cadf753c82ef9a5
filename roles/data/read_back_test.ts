import assert from "node:assert/strict";
import { chunkLength } from "../../imagetools/mod.ts";
import { badOnTarget, VerifyBehind } from "./read_back.ts";
import { memorySource, memoryTarget, randomImage } from "./testkit.ts";

const CHUNK = 4096;
// 6 chunks, the last short; chunk 2 is zeros.
const image = randomImage(5 * CHUNK + 300, [[2 * CHUNK, 3 * CHUNK]]);
const { manifest: m } = memorySource(image, CHUNK, "back.img");

function targetWithImage() {
  const t = memoryTarget(image.length, { fresh: false });
  t.bytes.set(image);
  return t;
}

Deno.test("VerifyBehind confirms chunks read back good; the rest stay for the final read-back", async () => {
  const t = targetWithImage();
  t.bytes[4 * CHUNK + 7] ^= 1; // chunk 4 went bad on the way to the disk
  const held = new Set([0, 1, 3, 4, 5]);
  const behind = new VerifyBehind(t, m, (i) => held.has(i));
  for (const i of [0, 1, 3, 4]) behind.queue(i);
  held.delete(3); // unmarked while its read was queued: not confirmed
  await behind.settle();
  assert.deepEqual(behind.takeUnchecked(), [2, 3, 4, 5]);
  // Once taken, every chunk is unchecked again.
  assert.deepEqual(behind.takeUnchecked(), [0, 1, 2, 3, 4, 5]);
  behind.queue(1);
  await behind.settle();
  behind.forget(1);
  assert.deepEqual(behind.takeUnchecked(), [0, 1, 2, 3, 4, 5]);
});

Deno.test("VerifyBehind checks a delta's written runs against what was written", async () => {
  const t = targetWithImage();
  const run = (at: number, len: number) => ({
    at,
    bytes: image.slice(CHUNK + at, CHUNK + at + len),
  });
  const behind = new VerifyBehind(t, m, () => true);
  behind.queue(1, [run(0, 100), run(2000, 96)]);
  await behind.settle();
  assert.deepEqual(behind.takeUnchecked(), [0, 2, 3, 4, 5]);
  t.bytes[CHUNK + 2050] ^= 1; // the second run went bad on the way to the disk
  behind.queue(1, [run(0, 100), run(2000, 96)]);
  await behind.settle();
  assert.deepEqual(behind.takeUnchecked(), [0, 1, 2, 3, 4, 5]);
});

Deno.test("VerifyBehind stops at a failing target and leaves the chunks to the read-back", async () => {
  const t = targetWithImage();
  t.readAt = () => Promise.reject(new Error("closed"));
  const behind = new VerifyBehind(t, m, () => true);
  behind.queue(0);
  behind.queue(1);
  await behind.settle();
  behind.queue(3); // stopped: ignored
  await behind.settle();
  assert.deepEqual(behind.takeUnchecked(), [0, 1, 2, 3, 4, 5]);
});

Deno.test("badOnTarget names the chunks that differ, a dirty zero chunk included", async () => {
  for (const md5 of [true, false]) {
    const t = targetWithImage();
    t.bytes[1 * CHUNK] ^= 0x80;
    t.bytes[2 * CHUNK + 5] = 1; // a zero chunk that is not zeros
    t.bytes[5 * CHUNK + 299] ^= 1; // the short last chunk's last byte
    const seen: number[] = [];
    const bad = await badOnTarget(t, m, [5, 0, 1, 2, 3, 4], {
      md5,
      progress: { update: (n) => void seen.push(n) },
    });
    assert.deepEqual(bad, [1, 2, 5]);
    assert.equal(seen.at(-1), image.length);
  }
  const whole = targetWithImage();
  assert.deepEqual(await badOnTarget(whole, m, [5, 3], { md5: true }), []);
  assert.deepEqual(await badOnTarget(whole, m, [], { md5: true }), []);
  assert.equal(chunkLength(m, 5), 300);
});

Deno.test("badOnTarget: a target that ends early or fails to read is an error, not a verdict", async () => {
  const short = memoryTarget(3 * CHUNK);
  await assert.rejects(badOnTarget(short, m, [0], { md5: true }), {
    message: `Cannot verify "memory": it is ${
      3 * CHUNK
    } bytes, shorter than the manifest's ${image.length} bytes`,
  });
  const failing = targetWithImage();
  failing.readAt = () => Promise.reject(new Error("Input/output error"));
  await assert.rejects(badOnTarget(failing, m, [1], { md5: true }), /Input\/output error/);
});

/** Chunk `i`'s verified bytes, lent as a transfer lends its buffer: counts its release. */
function lend(i: number, released: number[]) {
  return {
    bytes: image.slice(i * CHUNK, i * CHUNK + chunkLength(m, i)),
    release: () => void released.push(i),
  };
}

Deno.test("VerifyBehind compares the read-back with the verified bytes it holds: a differing disk is caught", async () => {
  const t = targetWithImage();
  t.bytes[3 * CHUNK + 100] ^= 4; // chunk 3 went bad on the way to the disk
  t.bytes[5 * CHUNK + 299] ^= 1; // and the short last chunk's last byte
  let reads = 0;
  const readAt = t.readAt.bind(t);
  const behind = new VerifyBehind(t, m, () => true);
  const released: number[] = [];
  // Reads the disk, but the verified buffer, not the manifest's SHA-256, decides.
  t.readAt = (offset, into) => (reads++, readAt(offset, into));
  for (const i of [0, 1, 3, 4, 5]) {
    assert.equal(behind.queue(i, undefined, lend(i, released)), true);
  }
  await behind.settle();
  assert.equal(reads, 5);
  assert.deepEqual(released, [0, 1, 3, 4, 5]); // every buffer back, once
  assert.deepEqual(behind.takeUnchecked(), [2, 3, 5]);

  // Verified bytes that are not the manifest's (they never are, but the disk must equal what
  // was verified): the disk holding the manifest's bytes is not confirmed either.
  const wrong = { bytes: image.slice(0, CHUNK), release: () => {} };
  wrong.bytes[9] ^= 1;
  t.bytes.set(image);
  behind.queue(0, undefined, wrong);
  await behind.settle();
  assert.deepEqual(behind.takeUnchecked(), [0, 1, 2, 3, 4, 5]);
});

Deno.test("VerifyBehind hashes what it has no room to hold: the buffer stays with the transfer", async () => {
  const t = targetWithImage();
  t.bytes[4 * CHUNK + 7] ^= 1; // chunk 4 went bad on the way to the disk
  // Room for one chunk's bytes: held while its read is queued, the next two are hashed.
  const behind = new VerifyBehind(t, m, () => true, CHUNK);
  const released: number[] = [];
  assert.equal(behind.queue(0, undefined, lend(0, released)), true);
  assert.equal(behind.queue(1, undefined, lend(1, released)), false);
  assert.equal(behind.queue(4, undefined, lend(4, released)), false);
  await behind.settle();
  assert.deepEqual(released, [0]); // only the one it took
  assert.deepEqual(behind.takeUnchecked(), [2, 3, 4, 5]);
  // Room again once the first was compared: taken.
  assert.equal(behind.queue(5, undefined, lend(5, released)), true);
  await behind.settle();
  assert.deepEqual(released, [0, 5]);
  assert.deepEqual(behind.takeUnchecked(), [0, 1, 2, 3, 4]);
});

Deno.test("VerifyBehind gives back every buffer it holds when the target fails", async () => {
  const t = targetWithImage();
  t.readAt = () => Promise.reject(new Error("closed"));
  const behind = new VerifyBehind(t, m, () => true);
  const released: number[] = [];
  for (const i of [0, 1, 3]) behind.queue(i, undefined, lend(i, released));
  await behind.settle();
  assert.deepEqual(released, [0, 1, 3]);
  assert.equal(behind.queue(4, undefined, lend(4, released)), false); // stopped: not taken
  assert.deepEqual(behind.takeUnchecked(), [0, 1, 2, 3, 4, 5]);
});
