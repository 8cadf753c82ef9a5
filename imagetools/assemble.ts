// Assembling: slices folder -> image file or disk, verifying every chunk before it is written.
// A regular file is built under a hidden temporary name and renamed at the end (a killed run
// leaves no half image under the real name); zero chunks stay holes. A block device is written
// in place, zeros included (a disk's old contents are not zeros), except chunks the manifest
// marks free (wholly in blocks no file system uses): those are left as the disk holds them.
import { dirname } from "node:path";
import { BATCH_SCRATCH, ChunkBatchHasher, chunkBuffers } from "./hashing/mod.ts";
import { leftoverPath, removeLeftovers } from "./leftovers.ts";
import { refuseMounted } from "./mounted.ts";
import { openSlices, osReason, sizeOf, type Slices, writeFully } from "./image_io.ts";
import { chunkCount, chunkLength, type Manifest } from "./manifest.ts";
import { Progress, type ProgressMode } from "./kit/mod.ts";
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
  /** Zero chunks marked free: not written to a block device (a file has holes there anyway). */
  freeChunks: number;
  seconds: number;
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw new Error(`Cannot assemble to "${path}": ${osReason(err)}`, { cause: err });
  }
}

/** Check a chunk's bytes against both its manifest hashes; throws naming the chunk and its file. */
async function checkChunk(
  slices: Slices,
  hasher: ChunkBatchHasher,
  pushed: () => void,
  index: number,
  bytes: Uint8Array,
  out: string,
) {
  const entry = slices.manifest.chunks[index];
  const digest = hasher.digest(bytes);
  pushed();
  const actual = await digest;
  for (const a of ["sha256", "md5"] as const) {
    if (actual[a] !== entry[a]) {
      throw new Error(
        `Cannot assemble "${out}": chunk ${index} file "${
          slices.chunkPath(index)
        }" is corrupt: expected ${HASH_LABEL[a]} "${entry[a]}", got "${actual[a]}"`,
      );
    }
  }
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
  if (info) await refuseMounted(out, "assemble to", true);
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
  // Chunk files are read into these buffers and hashed in place (SIMD lanes, two workers).
  const { memory, buffers: free, scratch, batch } = chunkBuffers(
    manifest.chunkSize,
    2 * BATCH_SCRATCH,
  );
  const hasher = new ChunkBatchHasher({ memory, scratch, batch });
  let closed = false;
  try {
    if (blockDevice) {
      const { size } = await sizeOf(out, info!);
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
    let freeChunks = 0;
    // A window of chunks read and verified ahead, one buffer each; writes go in order, one at a
    // time. `pushed` resolves with a chunk's place among those handed to the hasher, so the
    // writer can tell whether the chunk it waits for is still held back in a part-filled batch.
    interface Ahead {
      buf: Uint8Array | null;
      view: Uint8Array | null;
      pushed: Promise<unknown>;
      checked: Promise<void>;
    }
    let pushes = 0;
    const ahead: Ahead[] = [];
    const window = free.length;
    const start = (i: number) => {
      if (manifest.chunks[i].zero) {
        ahead.push({
          buf: null,
          view: null,
          pushed: Promise.resolve(),
          checked: Promise.resolve(),
        });
        return;
      }
      const buf = free.pop()!;
      const view = buf.subarray(0, chunkLength(manifest, i));
      let place = (_: number) => {};
      const pushed = new Promise<number>((r) => (place = r));
      const checked = slices.readChunk(i, view).then(() =>
        checkChunk(slices, hasher, () => place(pushes++), i, view, out)
      );
      checked.catch(() => {}); // awaited in order below; this only avoids an unhandled rejection
      ahead.push({ buf, view, pushed, checked });
    };
    for (let i = 0; i < Math.min(window, count); i++) start(i);
    let done = 0;
    for (let i = 0; i < count; i++) {
      const item = ahead.shift()!;
      const place = await Promise.race([item.pushed, item.checked]);
      if (typeof place === "number" && place >= pushes - hasher.held) hasher.flush();
      await item.checked;
      const length = chunkLength(manifest, i);
      const data = item.view ?? (manifest.chunks[i].free ? undefined : zeros?.subarray(0, length));
      if (item.view === null) zeroChunks++;
      if (manifest.chunks[i].free) freeChunks++;
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
      if (item.buf) free.push(item.buf);
      if (i + window < count) start(i + window);
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
      freeChunks,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (err) {
    if (!closed) file.close();
    if (!blockDevice) await Deno.remove(target).catch(() => {});
    throw err;
  } finally {
    hasher.close();
  }
}
