// Test and benchmark helpers for the data path: random images with zero runs, a minimal
// slicer writing the slices layout from memory (imagetools' slicer is the real one; this keeps
// the roles tests small and independent of it), and socket-free stand-ins: a source and a
// target in memory, and a fetch served by a Hono app. Manifests come from imagetools' test oracle.
import { join } from "node:path";
import { chunkLength, compressChunk, imageIdOf, storedFileName } from "../../imagetools/mod.ts";
import { checkChunkIndex, type ChunkSource } from "./chunk_source.ts";
import { expectedManifest, seededImage } from "../../imagetools/testkit.ts";
import type { TargetDisk } from "./target_disk.ts";

let nextSeed = 1;

/** `size` pseudo-random bytes (a new seed each call) with the [start, end) ranges zeroed. */
export function randomImage(size: number, zeroRanges: [number, number][] = []): Uint8Array {
  return seededImage(size, nextSeed++, zeroRanges);
}

/** Write DIR/manifest.json and DIR/chunks/<sha256>.chunk (zero chunks not stored); with
 * `zstd` (a level), format 3 with DIR/chunks/<sha256>.zst where zstd shrinks a chunk. */
export async function writeSlices(
  dir: string,
  image: Uint8Array,
  chunkSize: number,
  name: string,
  opts: { zstd?: number } = {},
) {
  const { manifest, text } = expectedManifest(image, chunkSize, name, opts);
  const manifestBytes = new TextEncoder().encode(text);
  await Deno.mkdir(join(dir, "chunks"), { recursive: true });
  for (let i = 0; i < manifest.chunks.length; i++) {
    const entry = manifest.chunks[i];
    if (entry.zero) continue;
    const off = i * chunkSize;
    const plain = image.subarray(off, off + chunkLength(manifest, i));
    const stored = entry.zstd !== undefined ? compressChunk(plain, opts.zstd)! : plain;
    await Deno.writeFile(join(dir, "chunks", storedFileName(entry)), stored);
  }
  await Deno.writeFile(join(dir, "manifest.json"), manifestBytes);
  return { manifest, manifestBytes };
}

/** A body re-sent as a byte stream (as a network fetch's is, so BYOB readers work), erroring
 * when `signal` aborts (as a network fetch's body does). */
function asNetworkBody(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal | null,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let onAbort = () => {};
  return new ReadableStream({
    type: "bytes",
    start(c: ReadableByteStreamController) {
      onAbort = () => {
        c.error(signal!.reason);
        reader.cancel(signal!.reason).catch(() => {});
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    },
    async pull(c: ReadableByteStreamController) {
      const { value, done } = await reader.read();
      if (done) {
        signal?.removeEventListener("abort", onAbort);
        c.close();
        c.byobRequest?.respond(0);
        return;
      }
      if (value.byteLength > 0) c.enqueue(value.slice());
    },
    cancel(reason) {
      signal?.removeEventListener("abort", onAbort);
      return reader.cancel(reason);
    },
  });
}

/** A `fetch` served by a Hono app's `request` (no socket): the receiver's HTTP client in tests.
 * Bodies come as byte streams and the request's signal cuts them, as over the network. */
export function appFetch(
  app: { request(url: string, init?: RequestInit): Response | Promise<Response> },
): (url: string, init: { signal: AbortSignal }) => Promise<Response> {
  return async (url, init) => {
    init.signal.throwIfAborted();
    const res = await app.request(url, init);
    return new Response(res.body ? asNetworkBody(res.body, init.signal) : null, {
      status: res.status,
      headers: res.headers,
    });
  };
}

/** A target disk in memory (the receiver's tests without files). */
export function memoryTarget(size: number, opts: { fresh?: boolean } = {}): TargetDisk & {
  bytes: Uint8Array;
  writes: number;
} {
  const bytes = new Uint8Array(size);
  return {
    path: "memory",
    size,
    isBlockDevice: false,
    fresh: opts.fresh ?? true,
    bytes,
    writes: 0,
    writeAt(offset, data) {
      if (offset + data.length > size) {
        return Promise.reject(new RangeError(`Cannot write past the end of "memory" (${size})`));
      }
      bytes.set(data, offset);
      this.writes++;
      return Promise.resolve();
    },
    readAt(offset, into) {
      const piece = bytes.subarray(offset, Math.min(size, offset + into.length));
      into.set(piece);
      return Promise.resolve(piece.length);
    },
    sync: () => Promise.resolve(),
    close() {},
  };
}

/** A complete source in memory: `image` sliced by imagetools' test oracle (no files); with
 * `zstd` (a level), format 3, sending chunks compressed where that shrinks them. */
export function memorySource(
  image: Uint8Array,
  chunkSize: number,
  name: string,
  opts: { zstd?: number } = {},
): ChunkSource {
  const { manifest, text } = expectedManifest(image, chunkSize, name, opts);
  const manifestBytes = new TextEncoder().encode(text);
  return {
    manifest,
    manifestBytes,
    imageId: imageIdOf(manifestBytes),
    has: (i) => Number.isSafeInteger(i) && i >= 0 && i < manifest.chunks.length,
    heldCount: () => manifest.chunks.length,
    read(i) {
      checkChunkIndex(manifest, i);
      const at = i * chunkSize;
      return Promise.resolve(image.slice(at, at + chunkLength(manifest, i)));
    },
    async readStored(i) {
      const plain = await this.read(i);
      if (manifest.chunks[i].zstd === undefined) return { zstd: false, bytes: plain };
      return { zstd: true, bytes: compressChunk(plain, opts.zstd)! };
    },
  };
}
