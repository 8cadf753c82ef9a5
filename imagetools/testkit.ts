// Helpers for imagetools' tests: seeded data, images with zero runs, and an in-memory oracle
// for what a manifest must say (computed independently of the slicer's pipeline).
import { createHash } from "node:crypto";
import { type ChunkEntry, type Manifest, MANIFEST_FORMAT, serializeManifest } from "./manifest.ts";

/** A small seeded PRNG (mulberry32): the same seed gives the same numbers on every run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `size` seeded pseudo-random bytes with the given [start, end) ranges zeroed. */
export function seededImage(
  size: number,
  seed: number,
  zeroRanges: [number, number][] = [],
): Uint8Array {
  const rand = mulberry32(seed);
  const bytes = new Uint8Array(size);
  const words = new Uint32Array(bytes.buffer, 0, Math.floor(size / 4));
  for (let i = 0; i < words.length; i++) words[i] = (rand() * 4294967296) >>> 0;
  for (let i = words.length * 4; i < size; i++) bytes[i] = (rand() * 256) >>> 0;
  for (const [a, b] of zeroRanges) bytes.fill(0, a, b);
  return bytes;
}

function hex(algo: string, bytes: Uint8Array): string {
  return createHash(algo).update(bytes).digest("hex");
}

/** The manifest (and its canonical text) that slicing `image` must produce. */
export function expectedManifest(image: Uint8Array, chunkSize: number, name: string) {
  const chunks: ChunkEntry[] = [];
  for (let off = 0; off < image.length; off += chunkSize) {
    const piece = image.subarray(off, Math.min(off + chunkSize, image.length));
    chunks.push({
      md5: hex("md5", piece),
      sha256: hex("sha256", piece),
      zero: piece.every((b) => b === 0),
    });
  }
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    name,
    size: image.length,
    chunkSize,
    md5: hex("md5", image),
    sha256: hex("sha256", image),
    chunks,
  };
  return { manifest, text: serializeManifest(manifest) };
}

/** Run `fn` with a fresh temporary folder, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "cascade-imagetools-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Names in a folder, sorted. */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}
