import assert from "node:assert/strict";
import { ChunkFeedFailed, LiveChunks, releasePiece } from "./live_chunks.ts";
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

/** Chunk `index` received whole as `bytes` and verified. */
function receive(live: LiveChunks, index: number, bytes: number[]) {
  live.begin(index, false, bytes.length);
  live.piece(index, new Uint8Array(bytes));
  live.verified(index);
}

Deno.test("a chunk's buffer carries the next chunk only once it ended, its readers closed and its views were written", async () => {
  const live = new LiveChunks(() => {});
  live.enable();
  receive(live, 0, [1, 2, 3, 4]);
  const feed = live.get(0)!;
  const view = (await feed.next(0))!;
  assert.deepEqual(view, new Uint8Array([1, 2, 3, 4]));
  assert.equal(await feed.next(4), null); // this reader is done
  live.end(0);
  assert.equal(live.keptBuffers(), 0, "a view not yet written keeps the buffer");
  releasePiece(view);
  releasePiece(view); // again: nothing more
  assert.equal(live.keptBuffers(), 1);
  receive(live, 1, [9, 9, 9]);
  assert.equal(live.keptBuffers(), 0);
  const next = (await live.get(1)!.next(0))!;
  assert.equal(next.buffer, view.buffer, "the buffer is reused");
  assert.deepEqual(next, new Uint8Array([9, 9, 9]));
});

Deno.test("a reader still open or a view never written keeps a chunk's bytes as they were", async () => {
  const live = new LiveChunks(() => {});
  live.enable();
  // A reader that may still ask after its chunk ended (a slow downstream).
  receive(live, 0, [1, 2, 3, 4]);
  const slow = live.get(0)!;
  const first = (await slow.next(0))!;
  releasePiece(first);
  live.end(0);
  receive(live, 1, [7, 7, 7, 7]);
  assert.deepEqual(await slow.next(0), new Uint8Array([1, 2, 3, 4]));
  // A view handed to a writer that never says it wrote it (Deno.serve's path).
  const other = live.get(1)!;
  const kept = (await other.next(0))!;
  other.close();
  other.close();
  live.end(1);
  receive(live, 2, [5, 5, 5, 5]);
  assert.deepEqual(kept, new Uint8Array([7, 7, 7, 7]));
  assert.notEqual((await live.get(2)!.next(0))!.buffer, kept.buffer);
  // A chunk that fails before it is verified: its reader is cut, and done once it knows.
  live.begin(3, false, 4);
  live.piece(3, new Uint8Array([6, 6]));
  const cut = live.get(3)!;
  const part = (await cut.next(0))!;
  releasePiece(part);
  live.end(3, "upstream gone");
  assert.equal(live.keptBuffers(), 0, "its reader has not asked since");
  await assert.rejects(cut.next(2), ChunkFeedFailed);
  assert.equal(live.keptBuffers(), 1);
});

Deno.test("a live chunk goes on in pieces of a sixteenth of it, the rest once it is whole", async () => {
  const live = new LiveChunks(() => {});
  live.enable();
  live.begin(0, false, 1600); // pieces of 100 bytes or more
  const feed = live.get(0)!;
  let got: Uint8Array | null = null;
  const first = feed.next(0).then((v) => got = v);
  live.piece(0, new Uint8Array(60).fill(1));
  await Promise.resolve();
  assert.equal(got, null, "60 bytes wait for more");
  live.piece(0, new Uint8Array(60).fill(2));
  await first;
  assert.equal(got!.length, 120);
  // The last 80 bytes of the chunk: less than a piece, sent once whole (all but the last byte)
  // and verified (the last).
  live.piece(0, new Uint8Array(1400).fill(3));
  assert.equal((await feed.next(120))!.length, 1400);
  const tail = feed.next(1520);
  live.piece(0, new Uint8Array(80).fill(4));
  assert.equal((await tail)!.length, 79);
  const last = feed.next(1599);
  live.verified(0);
  assert.deepEqual(await last, new Uint8Array([4]));
  assert.equal(await feed.next(1600), null);
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
