import assert from "node:assert/strict";
import { chunkLength } from "../../imagetools/mod.ts";
import { checkOnTarget, VerifyBehind } from "./read_back.ts";
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

Deno.test("checkOnTarget names the chunks that differ, a dirty zero chunk included", async () => {
  for (const md5 of [true, false]) {
    const t = targetWithImage();
    t.bytes[1 * CHUNK] ^= 0x80;
    t.bytes[2 * CHUNK + 5] = 1; // a zero chunk that is not zeros
    t.bytes[5 * CHUNK + 299] ^= 1; // the short last chunk's last byte
    const verdict = new Map<number, boolean>();
    const seen: number[] = [];
    await checkOnTarget(t, m, [0, 1, 2, 3, 4, 5], {
      md5,
      md5Threads: 1,
      progress: { update: (n: number) => seen.push(n) } as never,
    }, (i, ok) => verdict.set(i, ok));
    assert.deepEqual(
      [...verdict].sort((a, b) => a[0] - b[0]),
      [[0, true], [1, false], [2, false], [3, true], [4, true], [5, false]],
    );
    assert.equal(seen.at(-1), image.length);
  }
  const whole = targetWithImage();
  const ok: number[] = [];
  await checkOnTarget(whole, m, [5, 3], { md5: true, md5Threads: 0 }, (i, good) => {
    if (good) ok.push(i);
  });
  assert.deepEqual(ok.sort(), [3, 5]);
  assert.equal(chunkLength(m, 5), 300);
});
