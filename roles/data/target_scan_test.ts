// Re-imaging a target that holds an older version of the image: the scan runs while the
// transfer goes, chunks it verifies count as held and as read back, a chunk with a few changed
// 4 KiB pages costs those pages, and a crash in the middle of the scan loses nothing.
import assert from "node:assert/strict";
import { chunkLength, chunkOffset } from "../../imagetools/mod.ts";
import { FRAME_HEAD_BYTES } from "../protocol/mod.ts";
import { createChunkApp } from "./chunk_server.ts";
import type { ChunkSource } from "./chunk_source.ts";
import { DELTA_BLOCK } from "./delta.ts";
import { Receiver } from "./receiver.ts";
import { appFetch, memorySource, memoryTarget, randomImage } from "./testkit.ts";

const CHUNK = 64 * 1024;
// 24 chunks, the last one short; chunks 3-5 zeros.
const SIZE = 23 * CHUNK + 5000;
const image = randomImage(SIZE, [[3 * CHUNK, 6 * CHUNK]]);
const src = memorySource(image, CHUNK, "games.img");
const m = src.manifest;

/** The older version on the PC's disk: a page changed in chunks 2 and 7, the short last block
 * of the short last chunk 23, chunk 10 rewritten, chunk 12 never written (zeros), zero chunk 4
 * holding junk. */
function olderDisk(): Uint8Array {
  const d = image.slice();
  for (const i of [2, 7]) d.fill(0x42, i * CHUNK + 4 * DELTA_BLOCK, i * CHUNK + 5 * DELTA_BLOCK);
  d.fill(0x42, 23 * CHUNK + DELTA_BLOCK);
  d.set(randomImage(CHUNK), 10 * CHUNK);
  d.fill(0, 12 * CHUNK, 13 * CHUNK);
  d.fill(7, 4 * CHUNK, 4 * CHUNK + 100);
  return d;
}

/** A source that records which chunks were read to answer requests. */
function recorded(): { source: ChunkSource; asked: number[] } {
  const asked: number[] = [];
  return {
    asked,
    source: {
      ...src,
      has: (i) => src.has(i),
      heldCount: () => src.heldCount(),
      read: (i, o) => {
        asked.push(i);
        return src.read(i, o);
      },
    },
  };
}

/** A used target holding `bytes`, logging the chunk of every read. */
function usedTarget(bytes: Uint8Array) {
  const t = memoryTarget(SIZE, { fresh: false });
  t.bytes.set(bytes);
  const reads: number[] = [];
  const readAt = t.readAt.bind(t);
  const target = Object.assign(t, {
    reads,
    gate: null as Promise<void> | null,
    failAt: -1,
    async readAt(offset: number, into: Uint8Array) {
      const i = Math.floor(offset / CHUNK);
      reads.push(i);
      if (i === target.failAt) {
        throw new Error("Input/output error (os error 5)");
      }
      if (i >= 12 && target.gate) await target.gate;
      return await readAt(offset, into);
    },
  });
  return target;
}

function receiver(target: ReturnType<typeof usedTarget>, source: ChunkSource) {
  const manifestBytes = src.manifestBytes;
  return new Receiver({
    manifestBytes,
    target,
    inflight: 3,
    md5Threads: 0,
    fetch: appFetch(createChunkApp(source)),
  });
}

Deno.test("re-image: the transfer starts while the scan runs; changed pages cost pages", async () => {
  const target = usedTarget(olderDisk());
  const { source, asked } = recorded();
  const r = receiver(target, source);
  // The scan stops before chunk 12 until released: chunks 2 and 7 must come meanwhile (the
  // hashes come in batches of 8: chunk 10's verdict waits for the rest of its batch).
  let release!: () => void;
  target.gate = new Promise((resolve) => (release = resolve));
  const scan = r.startScan();
  const fetching = r.fetchFrom("http://server");
  for (let k = 0; k < 400 && !(r.has(2) && r.has(7)); k++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.ok(r.has(2) && r.has(7), "fetched while the scan waits");
  assert.ok(scan.running);
  assert.ok(r.has(0) && !r.has(13), "held as it verifies, not before");
  release();
  await fetching;
  assert.equal(scan.marked, 18); // all 24 but 2, 7, 10, 12, 23 (fetched) and 4 (junk)
  assert.deepEqual(target.bytes, image);
  assert.deepEqual(asked.sort((a, b) => a - b), [2, 7, 10, 12, 23]);
  // A page (and its 2-byte bitmap) for 2 and 7, the short block (1-byte bitmap) of 23; 10
  // whole by delta (all 16 blocks differ); 12 held only zeros on the disk: streamed whole.
  // Each delta answer is one frame (random blocks do not compress: raw), its 5-byte head more.
  const s = r.stats();
  assert.equal(
    s.bytesReceived,
    2 * (DELTA_BLOCK + 2) + (904 + 1) + (CHUNK + 2) + 4 * FRAME_HEAD_BYTES + CHUNK,
  );
  assert.equal(s.badChunks, 0);

  // The read-back reads only what was written without being read back yet: zero chunk 4.
  target.reads.length = 0;
  assert.deepEqual(await r.readBack(), []);
  assert.deepEqual(target.reads, [4]);
});

Deno.test("re-image: a crash in the middle of the scan loses nothing", async () => {
  const older = olderDisk();
  const first = usedTarget(older);
  first.failAt = 15; // the disk fails reads there (or the PC loses power) in the middle of the scan
  const one = recorded();
  const r1 = receiver(first, one.source);
  r1.startScan();
  const err = await r1.fetchFrom("http://server").catch((e) => e);
  assert.equal(err.reason, "read-failed");
  assert.match(err.message, /^Cannot read "games\.img" back from "memory" at byte 983040: Input/);
  // Nothing of what the disk held was touched: only verified chunks were written.
  for (let i = 0; i < m.chunks.length; i++) {
    const at = chunkOffset(m, i);
    const now = first.bytes.subarray(at, at + chunkLength(m, i));
    const was = older.subarray(at, at + chunkLength(m, i));
    const right = image.subarray(at, at + chunkLength(m, i));
    assert.ok(
      now.every((b, k) => b === was[k]) || now.every((b, k) => b === right[k]),
      `chunk ${i}`,
    );
  }
  // After the reboot: a new receiver on the same disk finds every chunk that was right, and
  // fetches only what the first one did not write.
  const second = usedTarget(first.bytes);
  const two = recorded();
  const r2 = receiver(second, two.source);
  r2.startScan();
  await r2.fetchFrom("http://server");
  assert.deepEqual(second.bytes, image);
  assert.deepEqual(two.asked.filter((i) => r1.has(i)), [], "nothing written is fetched again");
  assert.deepEqual([...new Set([...one.asked, ...two.asked])].sort((a, b) => a - b), [
    2,
    7,
    10,
    12,
    23,
  ]);
});

Deno.test("re-image: a delta that does not verify is fetched whole at once, not held against the server", async () => {
  const target = usedTarget(olderDisk());
  // The server's deltas (read unpaced) carry a wrong byte in chunk 7; whole chunks are right.
  const source: ChunkSource = {
    ...src,
    has: (i) => src.has(i),
    heldCount: () => src.heldCount(),
    read: async (i, o) => {
      const b = await src.read(i, o);
      if (i === 7 && o?.paced === false) b[4 * DELTA_BLOCK + 1] ^= 1;
      return b;
    },
  };
  const r = receiver(target, source);
  r.startScan();
  await r.fetchFrom("http://server");
  assert.deepEqual(target.bytes, image);
  const s = r.stats();
  // 7 twice: its delta, then the whole chunk.
  assert.equal(
    s.bytesReceived,
    2 * (DELTA_BLOCK + 2) + (904 + 1) + (CHUNK + 2) + 4 * FRAME_HEAD_BYTES + 2 * CHUNK,
  );
  assert.equal(s.badChunks, 1);
});

Deno.test("re-image: a blank disk stops the scan early; everything is fetched whole", async () => {
  // 21 chunks with data: a quarter of them (6) read as zeros, and the scan stops.
  const target = usedTarget(new Uint8Array(SIZE));
  const lines: string[] = [];
  const r = new Receiver({
    manifestBytes: src.manifestBytes,
    target,
    inflight: 3,
    md5Threads: 0,
    fetch: appFetch(createChunkApp(src)),
    log: (event, fields) => lines.push(`${event} ${JSON.stringify(fields ?? {})}`),
  });
  const scan = r.startScan();
  await scan.done;
  assert.equal(scan.failure, undefined);
  assert.equal(scan.marked, 3); // zero chunks 3-5, judged before the stop
  assert.ok(target.reads.length < 20, `the scan read ${target.reads.length} of 24 chunks`);
  assert.ok(lines.some((l) => l.startsWith("scan.blank")), lines.join("\n"));
  await r.fetchFrom("http://server");
  assert.deepEqual(target.bytes, image);
  assert.equal(r.stats().badChunks, 0);
});
