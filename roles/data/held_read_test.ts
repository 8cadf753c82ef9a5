import assert from "node:assert/strict";
import { join } from "node:path";
import { chunkLength, chunkOffset, parseManifest } from "../../imagetools/mod.ts";
import { FRAME_HEAD_BYTES, FRAMED_HEADER, parseFrameHead } from "../protocol/mod.ts";
import { openSlicesSource } from "./chunk_source.ts";
import { startChunkServer } from "./chunk_server.ts";
import { HeldReads } from "./held_read.ts";
import { Receiver } from "./receiver.ts";
import { openTarget } from "./target_disk.ts";
import { memoryTarget, randomImage, writeSlices } from "./testkit.ts";

const CHUNK = 64 * 1024;
const SIZE = 11 * CHUNK + 5000; // 12 chunks, the last one short; chunk 2 zeros
const ZEROS: [number, number][] = [[2 * CHUNK, 3 * CHUNK]];

async function sliced(dir: string) {
  const image = randomImage(SIZE, ZEROS);
  const { manifestBytes } = await writeSlices(join(dir, "slices"), image, CHUNK, "games.img");
  return { image, manifestBytes, manifest: parseManifest(new TextDecoder().decode(manifestBytes)) };
}

/** A sliced image in a temporary folder (removed after `fn`), on a memory target too. */
async function withImage(
  fn: (o: Awaited<ReturnType<typeof sliced>> & { dir: string }) => Promise<void>,
) {
  const dir = await Deno.makeTempDir();
  try {
    await fn({ dir, ...await sliced(dir) });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const chunkOf = (image: Uint8Array, m: ReturnType<typeof parseManifest>, i: number) =>
  image.subarray(chunkOffset(m, i), chunkOffset(m, i) + chunkLength(m, i));

Deno.test("HeldReads: a buffer reused while another read is in flight lends each its own chunk's bytes", async () => {
  await withImage(async ({ image, manifest }) => {
    const target = memoryTarget(SIZE);
    target.bytes.set(image);
    // Chunk 0's read waits until the test lets it go on.
    const gate = Promise.withResolvers<void>();
    const reader = {
      ...target,
      async readAt(offset: number, into: Uint8Array) {
        if (offset === 0) await gate.promise;
        return await target.readAt(offset, into);
      },
    };
    const reads = new HeldReads(reader, manifest, () => undefined);
    const lent: Uint8Array[] = [];
    const first = reads.with(0, (b) => (lent.push(b), b.slice()));
    // Chunk 1 ends and frees its buffer; chunk 11 (short) reuses it, chunk 0 still in flight.
    const one = await reads.with(1, (b) => (lent.push(b), b.slice()));
    const last = await reads.with(11, (b) => (lent.push(b), b.slice()));
    assert.equal(lent[0].buffer, lent[1].buffer, "the freed buffer is reused");
    gate.resolve();
    const zero = await first;
    assert.notEqual(lent[2].buffer, lent[0].buffer, "the read in flight has a buffer of its own");
    assert.deepEqual(zero, chunkOf(image, manifest, 0));
    assert.deepEqual(one, chunkOf(image, manifest, 1));
    assert.deepEqual(last, chunkOf(image, manifest, 11));
    assert.deepEqual(reads.stats(), { fromMemory: 0, fromDisk: 3 });
  });
});

Deno.test("HeldReads: verified bytes still held are lent without a disk read; a wrong length is not", async () => {
  await withImage(async ({ image, manifest }) => {
    const target = memoryTarget(SIZE);
    target.bytes.set(image);
    const held = new Map([[4, chunkOf(image, manifest, 4)], [5, new Uint8Array(10)]]);
    const reads = new HeldReads(target, manifest, (i) => held.get(i));
    let lent: Uint8Array | undefined;
    assert.deepEqual(
      await reads.with(4, (b) => (lent = b, b.slice())),
      chunkOf(image, manifest, 4),
    );
    assert.equal(lent, held.get(4));
    assert.deepEqual(await reads.with(5, (b) => b.slice()), chunkOf(image, manifest, 5));
    assert.deepEqual(reads.stats(), { fromMemory: 1, fromDisk: 1 });
  });
});

/** The frames of a framed stream's body, in order, each as [zstd, bytes]. */
async function framesOf(res: Response): Promise<Uint8Array[]> {
  assert.equal(res.status, 200);
  assert.equal(res.headers.get(FRAMED_HEADER), "1");
  const body = new Uint8Array(await res.arrayBuffer());
  const out: Uint8Array[] = [];
  for (let at = 0; at < body.length;) {
    const head = parseFrameHead(body.subarray(at, at + FRAME_HEAD_BYTES));
    if (typeof head === "string") throw new Error(head);
    assert.equal(head.zstd, false);
    at += FRAME_HEAD_BYTES;
    out.push(body.slice(at, at + head.length));
    at += head.length;
  }
  return out;
}

Deno.test("relay: held chunks read back through aligned buffers go out byte-identical, two streams at once", async () => {
  await withImage(async ({ dir, image, manifestBytes, manifest }) => {
    const upstream = await startChunkServer({
      source: await openSlicesSource(join(dir, "slices")),
      hostname: "127.0.0.1",
    });
    const target = await openTarget(join(dir, "relay"), SIZE, "games.img");
    const relayRx = new Receiver({ manifestBytes, target });
    const relay = await startChunkServer({ source: relayRx, hostname: "127.0.0.1" });
    try {
      await relayRx.fetchFrom(upstream.url);
      const nonZero = manifest.chunks.flatMap((c, i) => c.zero ? [] : [i]);
      const framed = { headers: { [FRAMED_HEADER]: "1" } };
      // Two streams of every held chunk in flight at once, plus one chunk alone.
      const [a, b, one] = await Promise.all([
        fetch(`${relay.url}/v1/stream?from=0&to=12`, framed).then(framesOf),
        fetch(`${relay.url}/v1/stream?from=0&to=12`, framed).then(framesOf),
        fetch(`${relay.url}/v1/chunks/7`, framed).then(framesOf),
      ]);
      const want = nonZero.map((i) => chunkOf(image, manifest, i));
      assert.deepEqual(a, want);
      assert.deepEqual(b, want);
      assert.deepEqual(one, [chunkOf(image, manifest, 7)]);
      // Plain reads (unframed) too: an owned copy.
      const plain = await relayRx.read(11);
      assert.deepEqual(plain, chunkOf(image, manifest, 11));
      const s = relayRx.heldReadStats();
      assert.equal(s.fromMemory + s.fromDisk, 2 * nonZero.length + 2);
    } finally {
      relayRx.close();
      await relay.close();
      await upstream.close();
      target.close();
    }
  });
});
