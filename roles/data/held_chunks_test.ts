import assert from "node:assert/strict";
import { expectedManifest, seededImage } from "../../imagetools/testkit.ts";
import { ChunkUnavailableError } from "./chunk_source.ts";
import { HeldChunks } from "./held_chunks.ts";

const CHUNK = 4096;
// Chunks 0..5, chunk 2 all zeros.
const { manifest } = expectedManifest(
  seededImage(6 * CHUNK, 7, [[2 * CHUNK, 3 * CHUNK]]),
  CHUNK,
  "held.img",
);

Deno.test("HeldChunks counts what is marked; zero chunks are servable before they are marked", () => {
  const h = new HeldChunks(manifest);
  assert.equal(h.total, 6);
  assert.equal(h.count, 0);
  assert.deepEqual(h.missing(), [0, 1, 3, 4, 5]);
  assert.equal(h.has(2), true);
  assert.equal(h.holds(2), false);
  assert.equal(h.has(1), false);
  assert.equal(h.has(-1) || h.has(6) || h.has(1.5), false);
  assert.equal(h.mark(1), true);
  assert.equal(h.mark(1), false);
  assert.equal(h.mark(2), true);
  assert.equal(h.count, 2);
  assert.deepEqual(h.missing(), [0, 3, 4, 5]);
  assert.equal(h.unmark(1), true);
  assert.equal(h.unmark(1), false);
  assert.equal(h.count, 1);
  assert.deepEqual(h.missing(), [0, 1, 3, 4, 5]);
});

Deno.test("HeldChunks.waitFor wakes every waiter when the chunk is marked, and at once if held", async () => {
  const h = new HeldChunks(manifest);
  const woke: number[] = [];
  const a = h.waitFor(3, 10_000).then(() => woke.push(1));
  const b = h.waitFor(3, 10_000).then(() => woke.push(2));
  assert.equal(h.waiting(), 2);
  h.mark(4);
  await Promise.resolve();
  assert.deepEqual(woke, []);
  h.mark(3);
  await Promise.all([a, b]);
  assert.deepEqual(woke, [1, 2]);
  assert.equal(h.waiting(), 0);
  await h.waitFor(3, 0);
});

Deno.test("HeldChunks.waitFor gives up after its wait, or when its signal aborts", async () => {
  const h = new HeldChunks(manifest);
  await assert.rejects(h.waitFor(5, 5), (err) => {
    assert.ok(err instanceof ChunkUnavailableError);
    assert.equal(err.message, `Chunk 5 of "held.img" did not arrive within 5 ms`);
    return true;
  });
  const ctl = new AbortController();
  const waiting = h.waitFor(5, 10_000, ctl.signal);
  ctl.abort(new Error("closing"));
  await assert.rejects(waiting, /closing/);
  assert.throws(() => h.waitFor(5, 10_000, ctl.signal), /closing/);
  assert.equal(h.waiting(), 0);
});
