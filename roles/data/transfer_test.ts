import assert from "node:assert/strict";
import { silentLogger } from "../../imagetools/kit/mod.ts";
import { createChunkApp } from "./chunk_server.ts";
import type { ChunkSource } from "./chunk_source.ts";
import { HeldChunks } from "./held_chunks.ts";
import { LiveChunks } from "./live_chunks.ts";
import { ReceiveError } from "./receive_error.ts";
import type { TargetDisk } from "./target_disk.ts";
import { Transfer, type TransferHost } from "./transfer.ts";
import { appFetch, memorySource, memoryTarget, randomImage } from "./testkit.ts";

const CHUNK = 4096;
// 10 chunks; chunk 4 is zeros.
const image = randomImage(10 * CHUNK, [[4 * CHUNK, 5 * CHUNK]]);
const src = memorySource(image, CHUNK, "transfer.img");

/** A host as a Receiver gives it, with tallies to look at; `serve` is what the server sends. */
function host(serve: ChunkSource, o: { maxBad?: number; target?: TargetDisk } = {}) {
  const held = new HeldChunks(src.manifest);
  const tally = { bytes: 0, bad: 0, written: [] as number[] };
  const h: TransferHost = {
    manifest: src.manifest,
    imageId: src.imageId,
    target: o.target ?? memoryTarget(image.length),
    held,
    live: new LiveChunks((i) => held.poke(i)),
    inflight: 2,
    maxBad: o.maxBad ?? 3,
    verifyMd5: true,
    md5Threads: 0,
    log: silentLogger,
    fetch: appFetch(createChunkApp(serve)),
    bytesReceived: () => tally.bytes,
    received: (_, n) => tally.bytes += n,
    touched: () => {},
    badChunk: () => tally.bad++,
    written: (i) => {
      held.mark(i);
      tally.written.push(i);
    },
    progress: () => {},
  };
  return { h, held, tally };
}

/** `src` with the chunks `bad` altered in one byte. */
function corrupting(bad: number[]): ChunkSource {
  return {
    ...src,
    has: (i) => src.has(i),
    heldCount: () => src.heldCount(),
    async read(i, opts) {
      const b = await src.read(i, opts);
      if (bad.includes(i)) b[9] ^= 1;
      return b;
    },
  };
}

Deno.test("Transfer writes every non-zero chunk once, verified, and only those", async () => {
  const { h, held, tally } = host(src);
  await new Transfer(h).run("http://server", {});
  assert.deepEqual(tally.written.sort((a, b) => a - b), [0, 1, 2, 3, 5, 6, 7, 8, 9]);
  assert.deepEqual(held.missing(), []);
  assert.equal(tally.bytes, 9 * CHUNK);
  const t = h.target as ReturnType<typeof memoryTarget>;
  assert.deepEqual(t.bytes, image);
});

Deno.test("Transfer bears bad chunks up to maxBad, then names them all in one error", async () => {
  const some = host(corrupting([2, 7]));
  const err = await new Transfer(some.h).run("http://server", {}).catch((e) => e);
  assert.ok(err instanceof ReceiveError);
  assert.equal(err.reason, "bad-chunk");
  assert.equal(err.index, 2);
  assert.match(err.message, /^Cannot verify chunk 2 of "transfer\.img" from http:\/\/server: /);
  assert.match(err.message, / \(2 bad chunks from http:\/\/server: 2, 7\)$/);
  assert.deepEqual(some.held.missing(), [2, 7]);
  assert.equal(some.tally.bad, 2);

  const many = host(corrupting([0, 1, 2, 3, 5, 6]), { maxBad: 1 });
  const cut = await new Transfer(many.h).run("http://server", {}).catch((e) => e);
  // The second bad chunk is one too many: it ends the transfer at once, as itself.
  assert.equal(cut.reason, "bad-chunk");
  assert.equal(cut.index, 1);
  assert.doesNotMatch(cut.message, /bad chunks from/);
  assert.ok(many.tally.bad >= 2, `${many.tally.bad}`);
});

Deno.test("Transfer stops at a write that fails: write-failed, naming the target", async () => {
  const target = memoryTarget(image.length);
  target.writeAt = () => Promise.reject(new Error("No space left on device"));
  const { h, held } = host(src, { target });
  const err = await new Transfer(h).run("http://server", {}).catch((e) => e);
  assert.ok(err instanceof ReceiveError);
  assert.equal(err.reason, "write-failed");
  assert.match(
    err.message,
    /^Cannot write chunk \d+ of "transfer\.img" to "memory" at byte \d+: No space/,
  );
  assert.equal(held.count, 0);
});

Deno.test("Transfer: an abort ends it with the signal's reason; what was written stays", async () => {
  const { h, held } = host(src);
  const ctl = new AbortController();
  const written = h.written;
  h.written = (i) => {
    written(i);
    ctl.abort(new Error("reassigned"));
  };
  const err = await new Transfer(h).run("http://server", { signal: ctl.signal }).catch((e) => e);
  assert.equal((err as Error).message, "reassigned");
  assert.ok(held.count >= 1 && held.missing().length >= 1, `${held.count}`);
});
