// Verifying: check an image file or disk against a manifest, chunk by chunk, naming every bad one.
import { BATCH_SCRATCH, ChunkBatchHasher, chunkBuffers } from "./hashing/mod.ts";
import { HASH_ALGOS, type HashAlgo, isAllZero } from "./hashing/mod.ts";
import { type LoadedManifest, loadManifest, openImage } from "./image_io.ts";
import {
  chunkCount,
  chunkLength,
  type Manifest,
  validateManifest,
  zeroChunkHashes,
} from "./manifest.ts";
import { Progress, type ProgressMode } from "./kit/mod.ts";

export interface BadChunk {
  index: number;
  /** Byte offset of the chunk in the image. */
  offset: number;
  hash: HashAlgo;
  expected: string;
  actual: string;
}

export interface VerifyOptions {
  /** Image file or block device (a device may be larger than the image). */
  image: string;
  /** Manifest file or slices folder, or a manifest already parsed. */
  manifest: string | Manifest;
  /** Hashes to check (default both). */
  algos?: readonly HashAlgo[];
  progress?: ProgressMode;
  progressWrite?: (text: string) => void;
}

export interface VerifyResult {
  bad: BadChunk[];
  manifest: Manifest;
  /** The manifest file read (absent when a parsed manifest was given). */
  manifestPath?: string;
  /** The image id (absent when a parsed manifest was given: its file bytes are unknown). */
  imageId?: string;
  chunks: number;
  /** Size of the image or device read (at least the manifest's size). */
  imageSize: number;
  seconds: number;
}

export const HASH_LABEL: Record<HashAlgo, string> = { md5: "MD5", sha256: "SHA-256" };

/** One line naming a bad chunk, e.g. `chunk 3 at offset 3145728: expected MD5 "…", got "…"`. */
export function formatBadChunk(b: BadChunk): string {
  return `chunk ${b.index} at offset ${b.offset}: expected ${
    HASH_LABEL[b.hash]
  } "${b.expected}", got "${b.actual}"`;
}

/** Check every chunk of `image` against the manifest; resolves with the bad ones (maybe none). */
export async function verifyImage(options: VerifyOptions): Promise<VerifyResult> {
  const started = performance.now();
  const algos = options.algos ?? HASH_ALGOS;
  if (algos.length === 0) throw new TypeError("Cannot verify: no hash to check was given");
  const loaded: Partial<LoadedManifest> = typeof options.manifest === "string"
    ? await loadManifest(options.manifest)
    : { manifest: validateManifest(options.manifest) };
  const manifest = loaded.manifest!;
  const src = await openImage(options.image);
  const { memory, buffers: free, scratch, batch } = chunkBuffers(
    manifest.chunkSize,
    2 * BATCH_SCRATCH,
  );
  const hasher = new ChunkBatchHasher({ memory, scratch, batch });
  try {
    if (src.size < manifest.size) {
      throw new Error(
        `Cannot verify "${options.image}": it is ${src.size} bytes, shorter than the manifest's ${manifest.size} bytes`,
      );
    }
    const count = chunkCount(manifest.size, manifest.chunkSize);
    const progress = new Progress({
      label: "verify",
      total: manifest.size,
      mode: options.progress ?? "quiet",
      ...(options.progressWrite ? { write: options.progressWrite } : {}),
    });
    const bad: BadChunk[] = [];
    const inFlight = new Set<Promise<void>>();
    let done = 0;
    let failure: unknown;
    for (let i = 0; i < count && failure === undefined; i++) {
      if (free.length === 0) hasher.flush(); // the held-back batch must go before we wait
      while (free.length === 0) await Promise.race(inFlight);
      const buf = free.pop()!;
      const offset = i * manifest.chunkSize;
      const length = chunkLength(manifest, i);
      const view = buf.subarray(0, length);
      const n = await src.readAt(offset, view).catch((err) => {
        free.push(buf);
        throw err;
      });
      if (n !== length) {
        free.push(buf);
        throw new Error(
          `Cannot verify "${options.image}": it ended at byte ${
            offset + n
          }, expected ${manifest.size}`,
        );
      }
      const entry = manifest.chunks[i];
      const task = (async () => {
        // A zero chunk that reads as zeros matches by definition: no hashing needed.
        const actual = entry.zero && isAllZero(view)
          ? zeroChunkHashes(length)
          : await hasher.digest(view);
        for (const a of algos) {
          if (actual[a] !== entry[a]) {
            bad.push({ index: i, offset, hash: a, expected: entry[a], actual: actual[a]! });
          }
        }
        done += length;
        progress.update(done);
      })().catch((err) => {
        failure ??= err;
      }).finally(() => {
        inFlight.delete(task);
        free.push(buf);
      });
      inFlight.add(task);
    }
    hasher.flush();
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure;
    progress.finish();
    bad.sort((x, y) => x.index - y.index || x.hash.localeCompare(y.hash));
    return {
      bad,
      manifest,
      manifestPath: loaded.path,
      imageId: loaded.imageId,
      chunks: count,
      imageSize: src.size,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    hasher.close();
    src.close();
  }
}
