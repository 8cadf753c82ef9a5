// Helpers for tests: seeded data, images with zero runs, an in-memory oracle
// for what a manifest must say (computed independently of the slicer's pipeline), loop devices.
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  type ChunkEntry,
  type Manifest,
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_V3,
  serializeManifest,
} from "./manifest.ts";
import { compressChunk } from "./zstd_chunks.ts";

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

/** `size` seeded bytes that compress well but not to nothing: words drawn from a small
 * vocabulary, like text and code. */
export function compressibleImage(size: number, seed: number): Uint8Array {
  const rand = mulberry32(seed);
  const words = Array.from({ length: 64 }, () => seededImage(3 + Math.floor(rand() * 12), seed++));
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size;) {
    const w = words[Math.floor(rand() * words.length)];
    bytes.set(w.subarray(0, size - at), at);
    at += w.length;
  }
  return bytes;
}

function hex(algo: string, bytes: Uint8Array): string {
  return createHash(algo).update(bytes).digest("hex");
}

/** The manifest (and its canonical text) that slicing `image` must produce: uncompressed
 * (format 1), or with `zstd` (a level) format 3 with each chunk's stored form, the whole
 * image's MD5 only with `imageMd5` and its SHA-256 unless `imageSha256` is false (as slicing
 * records them). */
export function expectedManifest(
  image: Uint8Array,
  chunkSize: number,
  name: string,
  opts: { zstd?: number; imageMd5?: boolean; imageSha256?: boolean } = {},
) {
  const chunks: ChunkEntry[] = [];
  for (let off = 0; off < image.length; off += chunkSize) {
    const piece = image.subarray(off, Math.min(off + chunkSize, image.length));
    const entry: ChunkEntry = {
      md5: hex("md5", piece),
      sha256: hex("sha256", piece),
      zero: piece.every((b) => b === 0),
    };
    if (opts.zstd !== undefined && !entry.zero) {
      const z = compressChunk(piece, opts.zstd);
      if (z) entry.zstd = z.length;
      else entry.raw = true;
    }
    chunks.push(entry);
  }
  const manifest: Manifest = {
    format: opts.zstd !== undefined ? MANIFEST_FORMAT_V3 : MANIFEST_FORMAT,
    name,
    size: image.length,
    chunkSize,
    ...(opts.zstd === undefined || opts.imageMd5 ? { md5: hex("md5", image) } : {}),
    ...(opts.zstd === undefined || opts.imageSha256 !== false
      ? { sha256: hex("sha256", image) }
      : {}),
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

// Loop devices (real block devices over temporary files): tests that need root and losetup
// ask whyNoLoopDevices first and are ignored, saying why, where they are missing.

async function losetup(args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await new Deno.Command("losetup", { args, stdout: "piped", stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(r.success ? r.stdout : r.stderr).trim();
    return { ok: r.success, out: text };
  } catch (err) {
    return { ok: false, out: (err as Error).message };
  }
}

/** Attach `file` to a free loop device; returns its path (e.g. /dev/loop3). `sectorSize`:
 * its logical sector size (4096: a 4Kn disk). */
export async function attachLoop(file: string, sectorSize = 512): Promise<string> {
  const r = await losetup(["--find", "--show", "--sector-size", String(sectorSize), file]);
  if (!r.ok) throw new Error(`Cannot attach "${file}" to a loop device: ${r.out}`);
  return r.out;
}

export async function detachLoop(device: string) {
  const r = await losetup(["--detach", device]);
  if (!r.ok) console.error(`Cannot detach "${device}": ${r.out}`);
}

/** Why loop devices cannot be used here, or null when they can (probed once, up front). */
export async function whyNoLoopDevices(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "loop devices are Linux only";
  if (Deno.uid() !== 0) return "not running as root (losetup needs it)";
  const dir = await Deno.makeTempDir({ prefix: "cascade-loop-probe-" });
  try {
    const file = join(dir, "probe.img");
    await Deno.writeFile(file, new Uint8Array(64 * 1024));
    const r = await losetup(["--find", "--show", file]);
    if (!r.ok) return `losetup cannot attach a loop device: ${r.out}`;
    await detachLoop(r.out);
    return null;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
