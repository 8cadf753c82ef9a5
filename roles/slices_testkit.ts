// Test and benchmark helpers for the data path: random images with zero runs, and a minimal
// slicer writing the slices layout (imagetools' slicer is the real one; this one keeps the
// roles tests independent of it and small).
import { createHash, randomFillSync } from "node:crypto";
import { join } from "node:path";
import {
  chunkFileName,
  chunkLength,
  type Manifest,
  MANIFEST_FORMAT,
  serializeManifest,
} from "../imagetools/mod.ts";

/** `size` random bytes with the given [start, end) ranges zeroed. */
export function randomImage(size: number, zeroRanges: [number, number][] = []): Uint8Array {
  const image = new Uint8Array(size);
  for (let off = 0; off < size; off += 1 << 16) {
    randomFillSync(image, off, Math.min(1 << 16, size - off));
  }
  for (const [a, b] of zeroRanges) image.fill(0, a, b);
  return image;
}

function isZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** The manifest of `image` (canonical bytes, as the slicer writes them). */
export function manifestOf(image: Uint8Array, chunkSize: number, name: string) {
  const chunks = [];
  for (let off = 0; off < image.length; off += chunkSize) {
    const bytes = image.subarray(off, Math.min(off + chunkSize, image.length));
    chunks.push({
      md5: createHash("md5").update(bytes).digest("hex"),
      sha256: createHash("sha256").update(bytes).digest("hex"),
      zero: isZero(bytes),
    });
  }
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    name,
    size: image.length,
    chunkSize,
    md5: createHash("md5").update(image).digest("hex"),
    sha256: createHash("sha256").update(image).digest("hex"),
    chunks,
  };
  return { manifest, manifestBytes: new TextEncoder().encode(serializeManifest(manifest)) };
}

/** Write DIR/manifest.json and DIR/chunks/<sha256>.chunk (zero chunks not stored). */
export async function writeSlices(dir: string, image: Uint8Array, chunkSize: number, name: string) {
  const out = manifestOf(image, chunkSize, name);
  await Deno.mkdir(join(dir, "chunks"), { recursive: true });
  for (let i = 0; i < out.manifest.chunks.length; i++) {
    const entry = out.manifest.chunks[i];
    if (entry.zero) continue;
    const off = i * chunkSize;
    await Deno.writeFile(
      join(dir, "chunks", chunkFileName(entry)),
      image.subarray(off, off + chunkLength(out.manifest, i)),
    );
  }
  await Deno.writeFile(join(dir, "manifest.json"), out.manifestBytes);
  return out;
}
