// A server's check of its own disk before it serves: a disk that does not hold the image must
// never serve it. Every chunk against the manifest (MD5 and SHA-256), the same check as
// `cascade verify` (imagetools' verifyChunks).
import { Progress, type ProgressMode } from "../../imagetools/kit/mod.ts";
import { openImage, parseManifest, verifyChunks } from "../../imagetools/mod.ts";

/** Resolves when the disk at `path` holds the image; throws naming the first bad chunk. */
export async function checkOwnDisk(
  path: string,
  manifestBytes: Uint8Array,
  progress: ProgressMode,
): Promise<void> {
  const manifest = parseManifest(new TextDecoder().decode(manifestBytes));
  const disk = await openImage(path, "disk");
  try {
    const shown = new Progress({ label: "verify", total: manifest.size, mode: progress });
    const bad = await verifyChunks(disk, manifest, { progress: shown });
    shown.finish();
    const chunks = new Set(bad.map((b) => b.index));
    if (chunks.size > 0) {
      throw new Error(
        `Cannot serve "${path}": ${chunks.size} chunk(s) do not match the image (first: chunk ${
          bad[0].index
        })`,
      );
    }
  } finally {
    disk.close();
  }
}
