import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  BATCH_SCRATCH,
  BatchImageHasher,
  ChunkBatchHasher,
  chunkBuffers,
  MD5_PAD_ROOM,
} from "./batch_hasher.ts";
import { alignedMemory } from "../kit/mod.ts";
import { hashChunk } from "./chunk_hash.ts";
import { md5LanesModule } from "./md5_multi.ts";
import { seededImage } from "../testkit.ts";

const hex = (algo: string, b: Uint8Array) => createHash(algo).update(b).digest("hex");

/** An image cut into `chunkSize` pieces, each copied into its own slot of a shared memory with
 * pad room after it, as slicing lays chunks out. */
function laidOut(image: Uint8Array, chunkSize: number) {
  const stride = Math.ceil((chunkSize + MD5_PAD_ROOM) / 16) * 16;
  const count = Math.ceil(image.length / chunkSize);
  const memory = alignedMemory(stride * count + 2 * BATCH_SCRATCH, { shared: true });
  const views = Array.from({ length: count }, (_, i) => {
    const piece = image.subarray(i * chunkSize, (i + 1) * chunkSize);
    const view = new Uint8Array(memory.buffer, i * stride, piece.length);
    view.set(piece);
    return view;
  });
  return { memory, views, scratch: stride * count };
}

Deno.test("md5LanesModule is valid WebAssembly for shared and plain memories, 4 and 8 lanes", () => {
  for (const shared of [true, false]) {
    for (const groups of [1, 2] as const) {
      assert.equal(WebAssembly.validate(md5LanesModule(shared, groups)), true);
    }
  }
});

Deno.test("BatchImageHasher matches node:crypto for every MD5 padding case and batch shape, SIMD or not", async () => {
  // Lengths around the padding edges (rest 0, 1, 55, 56, 63, 64 + ...) and a non-power of two;
  // 21 chunks: lanes of 8, of 4 (3 chunks), node:crypto (1-2 chunks), a shorter last chunk.
  const rests = [0, 1, 55, 56, 63, 65, 119, 120, 904];
  for (const [r, rest] of rests.entries()) {
    const chunkSize = 4096 + rest;
    const size = 21 * chunkSize - 17 * (r + 1);
    const image = seededImage(size, r + 1, [[2 * chunkSize, 3 * chunkSize]]); // chunk 2 is zero
    const { memory, views, scratch } = laidOut(image, chunkSize);
    for (const [batch, simd] of [[8, true], [11, true], [1, true], [8, false]] as const) {
      const before = views.map((v) => v.slice());
      const imageMd5 = batch !== 11; // with the whole-image MD5 chain, and once without
      const h = new BatchImageHasher({ memory, scratch, batch, simd, imageMd5 });
      try {
        for (let round = 0; round < 2; round++) { // finish() starts over
          const pending = views.map((v) => h.push(v));
          h.flush();
          const got = await Promise.all(pending);
          assert.deepEqual(
            got,
            views.map((v) => hashChunk(v)),
            `chunk ${chunkSize} batch ${batch} simd ${simd}`,
          );
          assert.equal(got[2].zero, true);
          assert.deepEqual(await h.finish(), {
            ...(imageMd5 ? { md5: hex("md5", image) } : {}),
            sha256: hex("sha256", image),
          });
        }
      } finally {
        h.close();
      }
      // The padding went after each chunk, never into it.
      views.forEach((v, i) => assert.deepEqual(v, before[i], `chunk ${i} unchanged`));
    }
  }
});

Deno.test("BatchImageHasher hashes an empty image and refuses chunks it cannot reach", async () => {
  const memory = alignedMemory(3 * 65536, { shared: true });
  const h = new BatchImageHasher({ memory, scratch: 65536 * 3 - BATCH_SCRATCH, batch: 8 });
  const withMd5 = new BatchImageHasher({
    memory,
    scratch: 65536 * 3 - BATCH_SCRATCH,
    batch: 8,
    imageMd5: true,
  });
  const neither = new BatchImageHasher({
    memory,
    scratch: 65536 * 3 - BATCH_SCRATCH,
    batch: 8,
    imageSha256: false,
  });
  try {
    assert.deepEqual(await h.finish(), { sha256: hex("sha256", new Uint8Array(0)) });
    assert.deepEqual(await neither.finish(), {});
    assert.deepEqual(await withMd5.finish(), {
      md5: hex("md5", new Uint8Array(0)),
      sha256: hex("sha256", new Uint8Array(0)),
    });
    await assert.rejects(
      h.push(new Uint8Array(new SharedArrayBuffer(10))),
      /not in the hasher's memory/,
    );
    // No room for the padding at the very end of the memory.
    const last = new Uint8Array(memory.buffer, memory.buffer.byteLength - 100, 100);
    await assert.rejects(h.push(last), /with pad room/);
    const waiting = h.push(new Uint8Array(memory.buffer, 0, 4096)); // held back: batch of 8
    h.close();
    await assert.rejects(waiting, /the hasher was closed/);
  } finally {
    h.close();
    withMd5.close();
    neither.close();
  }
});

Deno.test("BatchImageHasher refuses a memory, scratch offset or batch size it cannot use", () => {
  const shared = alignedMemory(65536, { shared: true });
  assert.throws(
    () => new BatchImageHasher({ memory: alignedMemory(65536), scratch: 0, batch: 8 }),
    /outside a shared WebAssembly.Memory/,
  );
  assert.throws(
    () => new BatchImageHasher({ memory: shared, scratch: 8, batch: 8 }),
    /Invalid scratch offset 8/,
  );
  assert.throws(
    () => new BatchImageHasher({ memory: shared, scratch: 65536, batch: 8 }),
    /Invalid scratch offset 65536/,
  );
  assert.throws(
    () => new BatchImageHasher({ memory: shared, scratch: 0, batch: 0 }),
    /Invalid batch size 0/,
  );
  assert.throws(
    () => new BatchImageHasher({ memory: shared, scratch: 0, batch: 65 }),
    /Invalid batch size 65/,
  );
});

Deno.test("ChunkBatchHasher gives each chunk's MD5 and SHA-256 (zero chunks too), on two workers", async () => {
  const chunkSize = 4096 + 56;
  const image = seededImage(40 * chunkSize - 100, 7, [[0, chunkSize]]);
  const { memory, views, scratch } = laidOut(image, chunkSize);
  for (const batch of [8, 3]) {
    const h = new ChunkBatchHasher({ memory, scratch, batch });
    try {
      const pending = views.map((v) => h.digest(v));
      h.flush();
      const want = views.map((v) => ({ md5: hex("md5", v), sha256: hex("sha256", v) }));
      assert.deepEqual(await Promise.all(pending), want, `batch ${batch}`);
      const held = h.digest(views[1]); // a batch of 1 of 8 waits for flush() or close()
      h.close();
      await assert.rejects(held, /the hasher was closed/);
    } finally {
      h.close();
    }
  }
  // Two workers need two scratch areas.
  assert.throws(
    () =>
      new ChunkBatchHasher({ memory, scratch: memory.buffer.byteLength - BATCH_SCRATCH, batch: 8 }),
    /Invalid scratch offset/,
  );
});

Deno.test("chunkBuffers: page-aligned chunk views with pad room, within ~32 MiB, batches of 8", () => {
  const b = chunkBuffers(1024 * 1024, 256);
  assert.equal(b.buffers.length, 31);
  assert.equal(b.batch, 8);
  for (const v of b.buffers) {
    assert.equal(v.length, 1024 * 1024);
    assert.equal(v.byteOffset % 4096, 0);
  }
  const gaps = b.buffers.slice(1).map((v, k) => v.byteOffset - b.buffers[k].byteOffset);
  assert.ok(gaps.every((g) => g >= 1024 * 1024 + MD5_PAD_ROOM));
  assert.ok(b.scratch >= b.buffers.at(-1)!.byteOffset + 1024 * 1024 + MD5_PAD_ROOM);
  assert.ok(b.scratch + 256 <= b.memory.buffer.byteLength);
  // A chunk bigger than the bound still gets three buffers, in batches of one.
  const big = chunkBuffers(64 * 1024 * 1024, 256);
  assert.deepEqual([big.buffers.length, big.batch], [3, 1]);
});

Deno.test("BatchImageHasher.pushZeros: unread zero chunks count in the image hashes as zeros", async () => {
  const chunkSize = 8192 + 5;
  // Chunks 1, 2 and 5 zero (the last one shorter): given as zero lengths, never as buffers.
  const size = 7 * chunkSize - 100;
  const image = seededImage(size, 9, [[chunkSize, 3 * chunkSize], [5 * chunkSize, 6 * chunkSize]]);
  const { memory, views, scratch } = laidOut(image, chunkSize);
  for (const batch of [1, 3, 8]) {
    const h = new BatchImageHasher({ memory, scratch, batch, imageMd5: true });
    try {
      const pending = views.map((v, i) =>
        [1, 2, 5].includes(i) ? h.pushZeros(v.length) : h.push(v)
      );
      h.flush();
      assert.deepEqual(await Promise.all(pending), views.map((v) => hashChunk(v)));
      assert.deepEqual(await h.finish(), { md5: hex("md5", image), sha256: hex("sha256", image) });
    } finally {
      h.close();
    }
  }
});
