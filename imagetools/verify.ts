// Verifying: check an image file or disk against a manifest, chunk by chunk, naming every bad one.
// verifyChunks works on any ImageReader (the one check for images, served disks, read-back).
import { createHash } from "node:crypto";
import { BATCH_SCRATCH, ChunkBatchHasher, chunkBuffers } from "./hashing/mod.ts";
import { HASH_ALGOS, type HashAlgo, isAllZero } from "./hashing/mod.ts";
import { type ImageReader, type LoadedManifest, loadManifest, openImage } from "./image_io.ts";
import {
  chunkCount,
  chunkLength,
  chunkOffset,
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

export interface VerifyChunksOptions {
  /** Hashes to compare (default both; both are computed either way, in SIMD lanes). */
  algos?: readonly HashAlgo[];
  /** Check only these chunks, in this order (default: every chunk). Chunks the manifest marks
   * free are skipped either way: nothing on a disk needs to be there. */
  indices?: readonly number[];
  /** Told the bytes checked so far. */
  progress?: { update(done: number): void };
  /** Told each chunk's verdict as soon as it is known (in batches, not always in order): `ok`,
   * and for a bad chunk the manifest does not mark zero, whether the disk held only zeros
   * there (a resume tells an older version of a chunk from one never written). */
  onChunk?: (index: number, ok: boolean, zeros: boolean) => void;
  /** Stops the check: it rejects with the signal's reason once the reads in flight ended. */
  signal?: AbortSignal;
  /** Chunks hashed per batch at most (default: what suits the buffers, up to 64): smaller
   * batches give verdicts sooner (a resume scan that overlaps receiving wants them soon). */
  batch?: number;
}

/**
 * Check chunks read from `reader` against the manifest, chunk by chunk: resolves with the bad
 * ones (one entry per hash that differs, ordered by index; none when all match). A zero chunk
 * that reads as zeros matches without hashing. The verify command, a server's check of its own
 * disk and a client's read-back all check through here. Throws when the reader is shorter than
 * the image or a read fails (the chunks are then not known to be bad, only unreadable).
 */
export async function verifyChunks(
  reader: ImageReader,
  manifest: Manifest,
  options: VerifyChunksOptions = {},
): Promise<BadChunk[]> {
  const algos = options.algos ?? HASH_ALGOS;
  if (algos.length === 0) throw new TypeError("Cannot verify: no hash to check was given");
  if (reader.size < manifest.size) {
    throw new Error(
      `Cannot verify "${reader.path}": it is ${reader.size} bytes, shorter than the manifest's ${manifest.size} bytes`,
    );
  }
  const count = chunkCount(manifest.size, manifest.chunkSize);
  const asked = options.indices ?? Array.from({ length: count }, (_, i) => i);
  for (const i of asked) {
    if (!Number.isSafeInteger(i) || i < 0 || i >= count) {
      throw new RangeError(
        `Invalid chunk index ${i} for "${manifest.name}": it has chunks 0..${count - 1}`,
      );
    }
  }
  // A free chunk (zero, wholly in blocks no file system uses) is never written on a PC: whatever
  // the disk holds there is right.
  const indices = asked.filter((i) => !manifest.chunks[i].free);
  const bad: BadChunk[] = [];
  if (indices.length === 0) return bad;
  const { memory, buffers: free, scratch, batch } = chunkBuffers(
    manifest.chunkSize,
    2 * BATCH_SCRATCH,
  );
  // Started at the first chunk that needs hashing: a read-back of zero chunks needs none.
  let hasher: ChunkBatchHasher | undefined;
  const size = Math.min(batch, options.batch ?? batch);
  const shaOnly = !algos.includes("md5");
  const hashes = () => hasher ??= new ChunkBatchHasher({ memory, scratch, batch: size });
  try {
    const inFlight = new Set<Promise<void>>();
    let done = 0;
    let failure: unknown;
    for (let k = 0; k < indices.length && failure === undefined; k++) {
      if (free.length === 0) hasher?.flush(); // the held-back batch must go before we wait
      while (free.length === 0) await Promise.race(inFlight);
      if (options.signal?.aborted) {
        failure ??= options.signal.reason;
        break;
      }
      const i = indices[k];
      const buf = free.pop()!;
      const offset = chunkOffset(manifest, i);
      const length = chunkLength(manifest, i);
      const view = buf.subarray(0, length);
      const n = await reader.readAt(offset, view).catch((err) => {
        free.push(buf);
        throw err;
      });
      if (n !== length) {
        free.push(buf);
        throw new Error(
          `Cannot verify "${reader.path}": it ended at byte ${
            offset + n
          }, expected ${manifest.size}`,
        );
      }
      const entry = manifest.chunks[i];
      const task = (async () => {
        // Hashing on this thread (SHA-256 alone) waits a turn, so the next read is on its way
        // to the disk first: reading and hashing overlap.
        if (shaOnly) await null;
        // Bytes that read as zeros have the zero chunk's hashes: no hashing needed, whatever
        // the manifest expects (a blank disk's scan, a zero chunk's read-back cost no hash).
        // SHA-256 alone: node:crypto's (SHA-NI, ~1.6 GB/s on one core) beats the lanes, which
        // pay for MD5 too (~0.5 GB/s on two cores).
        const zeros = isAllZero(view);
        const actual: Partial<Record<HashAlgo, string>> = zeros
          ? zeroChunkHashes(length)
          : shaOnly
          ? { sha256: createHash("sha256").update(view).digest("hex") }
          : await hashes().digest(view);
        let ok = true;
        for (const a of algos) {
          if (actual[a] !== entry[a]) {
            ok = false;
            bad.push({ index: i, offset, hash: a, expected: entry[a], actual: actual[a]! });
          }
        }
        options.onChunk?.(i, ok, !ok && !entry.zero && zeros);
        done += length;
        options.progress?.update(done);
      })().catch((err) => {
        failure ??= err;
      }).finally(() => {
        inFlight.delete(task);
        free.push(buf);
      });
      inFlight.add(task);
    }
    hasher?.flush();
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure;
    bad.sort((x, y) => x.index - y.index || x.hash.localeCompare(y.hash));
    return bad;
  } finally {
    hasher?.close();
  }
}

/** Check every chunk of `image` against the manifest; resolves with the bad ones (maybe none). */
export async function verifyImage(options: VerifyOptions): Promise<VerifyResult> {
  const started = performance.now();
  const loaded: Partial<LoadedManifest> = typeof options.manifest === "string"
    ? await loadManifest(options.manifest)
    : { manifest: validateManifest(options.manifest) };
  const manifest = loaded.manifest!;
  const src = await openImage(options.image);
  try {
    const progress = new Progress({
      label: "verify",
      total: manifest.size,
      mode: options.progress ?? "quiet",
      ...(options.progressWrite ? { write: options.progressWrite } : {}),
    });
    const bad = await verifyChunks(src, manifest, { algos: options.algos, progress });
    progress.finish();
    return {
      bad,
      manifest,
      manifestPath: loaded.path,
      imageId: loaded.imageId,
      chunks: chunkCount(manifest.size, manifest.chunkSize),
      imageSize: src.size,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    src.close();
  }
}
