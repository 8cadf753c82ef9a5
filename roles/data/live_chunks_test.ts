import assert from "node:assert/strict";
import { ChunkFeedFailed, LiveChunks } from "./live_chunks.ts";
import { HeldChunks } from "./held_chunks.ts";
import { memorySource, randomImage } from "./testkit.ts";

const src = memorySource(randomImage(3 * 1000), 1000, "live.img");

Deno.test("a live chunk goes on as it comes, its last byte only once verified", async () => {
  const live = new LiveChunks(() => {});
  // Nothing kept before a downstream asked.
  live.begin(0, false, 10);
  assert.equal(live.get(0), undefined);
  live.enable();
  live.begin(0, false, 10);
  const feed = live.get(0)!;
  live.piece(0, new Uint8Array([1, 2, 3]));
  assert.deepEqual(await feed.next(0), new Uint8Array([1, 2, 3]));
  const waiting = feed.next(3);
  live.piece(0, new Uint8Array([4, 5, 6, 7, 8, 9, 10]));
  assert.deepEqual(await waiting, new Uint8Array([4, 5, 6, 7, 8, 9]));
  const last = feed.next(9);
  live.verified(0);
  assert.deepEqual(await last, new Uint8Array([10]));
  assert.equal(await feed.next(10), null);
  // Held now: new readers go to the target; a verified feed stays good for those sending it.
  live.end(0);
  assert.equal(live.get(0), undefined);
  assert.equal(live.size(), 0);
  assert.equal(await feed.next(10), null);
});

Deno.test("a live chunk that fails cuts its readers; an abort ends a wait", async () => {
  const live = new LiveChunks(() => {});
  live.enable();
  live.begin(1, true, 4);
  const feed = live.get(1)!;
  live.piece(1, new Uint8Array([1, 2, 3, 4]));
  assert.deepEqual(await feed.next(0), new Uint8Array([1, 2, 3]));
  const waiting = feed.next(3);
  live.end(1, "expected SHA-256 x");
  await assert.rejects(
    waiting,
    new ChunkFeedFailed("Chunk 1 failed at this relay: expected SHA-256 x"),
  );
  // Received again: a new feed; the old one stays failed.
  live.begin(1, false, 2);
  assert.notEqual(live.get(1), feed);
  await assert.rejects(feed.next(0), ChunkFeedFailed);
  const ctl = new AbortController();
  const wait = live.get(1)!.next(0, ctl.signal);
  ctl.abort(new Error("client gone"));
  await assert.rejects(wait, new Error("client gone"));
});

Deno.test("HeldChunks.waitFor with `until`: a poke wakes it only once `until` holds", async () => {
  const held = new HeldChunks(src.manifest);
  let live = false;
  let woke = false;
  const wait = held.waitFor(2, 10_000, undefined, () => live).then(() => woke = true);
  held.poke(2);
  await Promise.resolve();
  assert.equal(woke, false);
  live = true;
  held.poke(2);
  await wait;
  assert.equal(held.holds(2), false);
  assert.equal(held.waiting(), 0);
  // Without `until`, a poke does not wake: only the chunk held does.
  const plain = held.waitFor(2, 10_000);
  held.poke(2);
  assert.equal(held.waiting(), 1);
  held.mark(2);
  await plain;
  assert.equal(held.waiting(), 0);
});
