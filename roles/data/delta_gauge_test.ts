// Deltas stop where they do not pay: on a disk holding another image (every block of every
// chunk changed) after DELTA_JUDGE_AFTER deltas the rest come whole; a disk holding last month's
// image keeps its deltas. The gauge's arithmetic, then a real re-image through the chunk server.
import assert from "node:assert/strict";
import { createChunkApp } from "./chunk_server.ts";
import { DELTA_GIVE_UP, DELTA_JUDGE_AFTER, DeltaGauge } from "./delta_gauge.ts";
import { DELTA_BLOCK } from "./delta.ts";
import { Receiver } from "./receiver.ts";
import { appFetch, memorySource, memoryTarget, randomImage } from "./testkit.ts";

const CHUNK = 64 * 1024; // 16 blocks

Deno.test("DeltaGauge: judges only after DELTA_JUDGE_AFTER deltas, and turns off once", () => {
  const g = new DeltaGauge();
  const all = Array.from({ length: 16 }, (_, b) => b);
  for (let k = 1; k < DELTA_JUDGE_AFTER; k++) assert.equal(g.turnsOff(all, CHUNK), false);
  assert.equal(g.turnsOff(undefined, CHUNK), false, "a whole chunk is not a delta");
  assert.equal(g.turnsOff(all, CHUNK), true, "the 16th delta of whole chunks");
  assert.equal(g.worthIt, false);
  assert.equal(g.turnsOff(all, CHUNK), false, "said once");
  assert.equal(g.share, 1);
  // Scattered pages: deltas pay, however many come.
  const few = new DeltaGauge();
  for (let k = 0; k < 100; k++) few.turnsOff([3, 9], CHUNK);
  assert.equal(few.worthIt, true);
  assert.equal(few.share, 2 / 16);
  // At the line: DELTA_GIVE_UP of the blocks still pays, a block more does not.
  const edge = new DeltaGauge();
  for (let k = 0; k < DELTA_JUDGE_AFTER; k++) edge.record(DELTA_GIVE_UP * 16, 16);
  assert.equal(edge.worthIt, true);
  edge.record(16, 16);
  assert.equal(edge.worthIt, false);
});

/** Re-image `disk` with `image`; what went over the wire and how many delta requests. */
async function reimage(image: Uint8Array, disk: Uint8Array) {
  const src = memorySource(image, CHUNK, "new.img");
  const target = memoryTarget(image.length, { fresh: false });
  target.bytes.set(disk);
  const app = appFetch(createChunkApp(src));
  let deltas = 0;
  const logs: string[] = [];
  const r = new Receiver({
    manifestBytes: src.manifestBytes,
    target,
    inflight: 2,
    md5Threads: 0,
    fetch: (url, init) => {
      if (url.includes("/v1/delta/")) deltas++;
      return app(url, init);
    },
    log: (event) => logs.push(event),
  });
  r.startScan();
  await r.fetchFrom("http://server");
  assert.deepEqual(target.bytes, image, "the disk holds the new image");
  return { bytes: r.stats().bytesReceived, deltas, logs };
}

Deno.test("re-image onto a disk holding another image: deltas stop, the rest come whole", async () => {
  const n = 64;
  const image = randomImage(n * CHUNK);
  const other = await reimage(image, randomImage(n * CHUNK));
  assert.ok(other.logs.includes("delta.off"), "deltas turned off");
  // The ones judged, and at most those in flight or planned beside them (2 x 4 workers).
  assert.ok(other.deltas >= DELTA_JUDGE_AFTER && other.deltas <= DELTA_JUDGE_AFTER + 8);
  assert.ok(other.bytes < (n + 1) * CHUNK + n * 100, `${other.bytes} bytes: about the chunks`);

  // Last month's image: a page changed in each chunk, every chunk a delta, none turned off.
  const month = image.slice();
  for (let i = 0; i < n; i++) {
    month.fill(0x42, i * CHUNK + 5 * DELTA_BLOCK, i * CHUNK + 6 * DELTA_BLOCK);
  }
  const updated = await reimage(image, month);
  assert.equal(updated.deltas, n);
  assert.ok(!updated.logs.includes("delta.off"));
  assert.ok(updated.bytes < n * (DELTA_BLOCK + 100));
});
