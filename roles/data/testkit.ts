// Test and benchmark helpers for the data path: random images with zero runs, and a minimal
// slicer writing the slices layout from memory (imagetools' slicer is the real one; this keeps
// the roles tests small and independent of it). Manifests come from imagetools' test oracle.
import { join } from "node:path";
import { chunkFileName, chunkLength } from "../../imagetools/mod.ts";
import { expectedManifest, seededImage } from "../../imagetools/testkit.ts";

let nextSeed = 1;

/** `size` pseudo-random bytes (a new seed each call) with the [start, end) ranges zeroed. */
export function randomImage(size: number, zeroRanges: [number, number][] = []): Uint8Array {
  return seededImage(size, nextSeed++, zeroRanges);
}

/** Write DIR/manifest.json and DIR/chunks/<sha256>.chunk (zero chunks not stored). */
export async function writeSlices(dir: string, image: Uint8Array, chunkSize: number, name: string) {
  const { manifest, text } = expectedManifest(image, chunkSize, name);
  const manifestBytes = new TextEncoder().encode(text);
  await Deno.mkdir(join(dir, "chunks"), { recursive: true });
  for (let i = 0; i < manifest.chunks.length; i++) {
    const entry = manifest.chunks[i];
    if (entry.zero) continue;
    const off = i * chunkSize;
    await Deno.writeFile(
      join(dir, "chunks", chunkFileName(entry)),
      image.subarray(off, off + chunkLength(manifest, i)),
    );
  }
  await Deno.writeFile(join(dir, "manifest.json"), manifestBytes);
  return { manifest, manifestBytes };
}
