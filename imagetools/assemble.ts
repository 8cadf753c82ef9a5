// Assembling: slices folder -> image file or disk, verifying every chunk before it is written.
// A regular file is built under a hidden temporary name and renamed at the end (a killed run
// leaves no half image under the real name); zero chunks stay holes. A block device is written
// in place, zeros included (a disk's old contents are not zeros).
import { dirname } from "node:path";
import { HasherPool } from "./hashing.ts";
import { leftoverPath, removeLeftovers } from "./leftovers.ts";
import { openSlices, osReason, sizeOf, type Slices, writeFully } from "./image_io.ts";
import { chunkCount, chunkLength, type Manifest } from "./manifest.ts";
import { Progress, type ProgressMode } from "./progress.ts";
import { HASH_LABEL } from "./verify.ts";

export interface AssembleOptions {
  /** Slices folder (or its manifest.json). */
  slices: string;
  /** Image file to create, or a block device to write. */
  out: string;
  /** Overwrite an existing file or write an existing device. */
  force?: boolean;
  progress?: ProgressMode;
  progressWrite?: (text: string) => void;
  /** fsync before finishing (default true). */
  sync?: boolean;
}

export interface AssembleResult {
  manifest: Manifest;
  imageId: string;
  out: string;
  blockDevice: boolean;
  /** Unfinished files of interrupted earlier runs, removed before this one started. */
  removedLeftovers: string[];
  chunks: number;
  zeroChunks: number;
  seconds: number;
}

/** Chunks read and verified ahead of the one being written. */
const WINDOW = 6;

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw new Error(`Cannot assemble to "${path}": ${osReason(err)}`, { cause: err });
  }
}

/** Read chunk `index` and check both its hashes; throws naming the chunk and its file. */
async function readVerified(slices: Slices, pool: HasherPool, index: number, out: string) {
  const entry = slices.manifest.chunks[index];
  if (entry.zero) return null;
  const bytes = await slices.readChunk(index);
  const actual = await pool.digest(bytes);
  for (const a of ["sha256", "md5"] as const) {
    if (actual[a] !== entry[a]) {
      throw new Error(
        `Cannot assemble "${out}": chunk ${index} file "${
          slices.chunkPath(index)
        }" is corrupt: expected ${HASH_LABEL[a]} "${entry[a]}", got "${actual[a]}"`,
      );
    }
  }
  return bytes;
}

/** Rebuild the image from slices into `out` (a new/replaced file or a block device). */
export async function assembleImage(options: AssembleOptions): Promise<AssembleResult> {
  const started = performance.now();
  const sync = options.sync ?? true;
  const slices = await openSlices(options.slices);
  const { manifest } = slices;
  const out = options.out;
  const info = await statOrNull(out);
  if (info?.isDirectory) throw new Error(`Cannot assemble to "${out}": it is a directory`);
  if (info && !info.isFile && !info.isBlockDevice) {
    throw new Error(`Cannot assemble to "${out}": it is not a regular file or a block device`);
  }
  if (info && !options.force) {
    throw new Error(
      `Cannot assemble to "${out}": it already exists (use --force to overwrite it)`,
    );
  }
  const blockDevice = Boolean(info?.isBlockDevice);
  const removedLeftovers = blockDevice ? [] : await removeLeftovers(out);
  const target = blockDevice ? out : leftoverPath(out, "partial");

  let file: Deno.FsFile;
  try {
    file = await Deno.open(
      target,
      blockDevice ? { write: true } : { write: true, createNew: true },
    );
  } catch (cause) {
    throw new Error(`Cannot open "${target}" for writing: ${osReason(cause)}`, { cause });
  }
  const pool = new HasherPool({ workers: 2 });
  let closed = false;
  try {
    if (blockDevice) {
      const size = await sizeOf(file, info!);
      if (size < manifest.size) {
        throw new Error(
          `Cannot assemble to "${out}": the device holds ${size} bytes, less than the image's ${manifest.size} bytes`,
        );
      }
    } else {
      await file.truncate(manifest.size); // zero chunks stay holes
    }
    const count = chunkCount(manifest.size, manifest.chunkSize);
    const progress = new Progress({
      label: "assemble",
      total: manifest.size,
      mode: options.progress ?? "quiet",
      ...(options.progressWrite ? { write: options.progressWrite } : {}),
    });
    const zeros = blockDevice ? new Uint8Array(manifest.chunkSize) : null;
    let zeroChunks = 0;
    // A window of chunks read and verified ahead; writes go in order, one at a time.
    const ahead: Promise<Uint8Array | null>[] = [];
    const start = (i: number) => {
      const p = readVerified(slices, pool, i, out);
      p.catch(() => {}); // awaited in order below; this only avoids an unhandled rejection
      ahead.push(p);
    };
    for (let i = 0; i < Math.min(WINDOW, count); i++) start(i);
    let done = 0;
    for (let i = 0; i < count; i++) {
      const bytes = await ahead.shift()!;
      if (i + WINDOW < count) start(i + WINDOW);
      const length = chunkLength(manifest, i);
      const data = bytes ?? zeros?.subarray(0, length);
      if (bytes === null) zeroChunks++;
      if (data) {
        try {
          await file.seek(i * manifest.chunkSize, Deno.SeekMode.Start);
          await writeFully(file, data);
        } catch (cause) {
          throw new Error(
            `Cannot write chunk ${i} to "${out}" at offset ${i * manifest.chunkSize}: ${
              osReason(cause)
            }`,
            { cause },
          );
        }
      }
      done += length;
      progress.update(done);
    }
    if (sync) await file.syncData();
    file.close();
    closed = true;
    if (!blockDevice) {
      await Deno.rename(target, out);
      if (sync) {
        const d = await Deno.open(dirname(out), { read: true });
        await d.sync().finally(() => d.close());
      }
    }
    progress.finish();
    return {
      manifest,
      imageId: slices.imageId,
      out,
      blockDevice,
      removedLeftovers,
      chunks: count,
      zeroChunks,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (err) {
    if (!closed) file.close();
    if (!blockDevice) await Deno.remove(target).catch(() => {});
    throw err;
  } finally {
    pool.close();
  }
}
