// Slicing: a golden image (file or block device) -> a slices folder (manifest.json + chunks/).
//
// Crash safety: everything is built in a hidden sibling folder (".<out>.partial-…") and
// only renamed to <out> once the chunks and then the manifest are written and fsynced. A run
// killed at any point leaves no <out> that names missing chunks, so the chunk files themselves
// need no temporary names of their own: the whole folder is the temporary name. Such a folder
// left by a killed run is removed by the next run for the same output (leftovers.ts).
import { basename, dirname, join } from "node:path";
import { BATCH_SCRATCH, BatchImageHasher, chunkBuffers, isAllZero } from "./hashing/mod.ts";
import { alignedMemory, DIRECT_ALIGN } from "./kit/mod.ts";
import { NewFileWriter } from "./direct_write.ts";
import {
  type ImageHasher,
  type ImageHasherMode,
  InlineImageHasher,
  SplitImageHasher,
} from "./hashing/mod.ts";
import { CHUNKS_DIR, defaultSlicesDir, MANIFEST_FILE, openImage, osReason } from "./image_io.ts";
import {
  chunkCount,
  type ChunkEntry,
  chunkFileName,
  chunkLength,
  DEFAULT_CHUNK_SIZE,
  imageIdOf,
  type Manifest,
  MANIFEST_FORMAT,
  MANIFEST_FORMAT_V2,
  MANIFEST_FORMAT_V3,
  MAX_CHUNK_SIZE,
  MAX_IMAGE_SIZE,
  MIN_CHUNK_SIZE,
  parseManifest,
  serializeManifest,
  storedFileName,
} from "./manifest.ts";
import { CompressPool, DEFAULT_ZSTD_LEVEL } from "./zstd_chunks.ts";
import { leftoverPath, removeLeftovers } from "./leftovers.ts";
import { fsyncPath, lstatOrNull, replaceable, swapIn } from "./slice_folder.ts";
import { analyzeDisk, type DiskLayout, isWhollyFree } from "./fs/mod.ts";
import { readChunk, readerOf } from "./slice_read.ts";
import { refuseMounted } from "./mounted.ts";
import { Progress, type ProgressMode } from "./kit/mod.ts";

export interface SliceOptions {
  /** Image file or block device to slice. */
  image: string;
  /** Output folder (default "<image>.cascade" beside the image; required for a device). */
  out?: string;
  /** Bytes per chunk (default 1 MiB). */
  chunkSize?: number;
  /** Name recorded in the manifest (default: the image's file name). */
  name?: string;
  /** Replace an existing slices folder at `out`. */
  force?: boolean;
  /** Progress on stderr (default "quiet"). */
  progress?: ProgressMode;
  /** Where progress text goes (default stderr). */
  progressWrite?: (text: string) => void;
  /** How to hash (default "batch"; the others are the benchmark's comparisons). */
  hasher?: ImageHasherMode;
  /** fsync chunks, manifest and folders before the final rename (default true). */
  sync?: boolean;
  /** Write chunk files around the page cache (O_DIRECT) where the file system allows
   * (default true; false is the benchmark's comparison). */
  direct?: boolean;
  /** Keep every byte: no partition table or file system is read, free blocks are kept as they
   * are (default false: free blocks of understood file systems become zeros). */
  raw?: boolean;
  /** Keep the contents of Windows' paging and hibernation files (default false: past their
   * first MiB they count as free; fs/ntfs_transient.ts). */
  keepPagefiles?: boolean;
  /** Store chunks as they are, not zstd-compressed (manifest format 1 or 2, as before). */
  uncompressed?: boolean;
  /** zstd level of the stored chunks (default DEFAULT_ZSTD_LEVEL). */
  zstdLevel?: number;
  /** Threads compressing (default: one per core, at most 4). */
  zstdThreads?: number;
  /** Record the whole image's MD5 too (default false: its one chain over every byte, free
   * space included, costs more than the rest of slicing on a mostly free disk). Always with
   * `uncompressed`: formats 1 and 2 carry it. */
  imageMd5?: boolean;
  /** Record the whole image's SHA-256 (default true; false leaves its one chain over every byte
   * out, most of a slice of a mostly free disk). Always with `uncompressed`. */
  imageSha256?: boolean;
}

export interface SliceResult {
  manifest: Manifest;
  manifestBytes: Uint8Array;
  imageId: string;
  /** The slices folder written. */
  dir: string;
  chunks: number;
  zeroChunks: number;
  /** Zero chunks wholly in free blocks (marked free: never written on a PC). */
  freeChunks: number;
  /** Bytes of free blocks turned into zeros (0 with `raw`). */
  zeroedBytes: number;
  /** What the partition tables and file systems were found to be (absent with `raw`). */
  layout?: DiskLayout;
  /** Distinct non-zero chunks written (identical chunks are stored once). */
  storedChunks: number;
  /** Bytes of those chunks' files (compressed where zstd made them smaller). */
  storedBytes: number;
  /** Bytes of those chunks uncompressed. */
  plainBytes: number;
  /** Chunk files were written around the page cache (O_DIRECT). */
  direct: boolean;
  /** Unfinished folders of interrupted earlier runs, removed before this one started. */
  removedLeftovers: string[];
  seconds: number;
}

/** Bytes of chunk buffers slicing reads ahead into. WHY 4 × the default: used chunks cost
 * compression, wholly free ones only the whole-image hashes (the MD5 one chain on one thread);
 * disks keep their free space together (at the end, after a fresh install), so while that MD5
 * goes through it the other core compresses the used chunks read ahead, as many as fit here. */
const SLICE_BUFFERS = 128 * 1024 * 1024;

function createHasher(
  mode: ImageHasherMode,
  memory: WebAssembly.Memory,
  scratch: number,
  batch: number,
  imageMd5: boolean,
  imageSha256: boolean,
): ImageHasher {
  if (mode === "inline") return new InlineImageHasher();
  if (mode === "split") return new SplitImageHasher();
  return new BatchImageHasher({ memory, scratch, batch, imageMd5, imageSha256 });
}

function checkName(name: string) {
  // Mirrors validateManifest's rule, so a bad --name fails before the slicing, not after.
  const control = [...name].some((ch) => ch.charCodeAt(0) < 32);
  if (name.length === 0 || name.length > 255 || control) {
    throw new RangeError(
      `Invalid name ${JSON.stringify(name)}: must be 1..255 printable characters`,
    );
  }
}

/** Slice an image or block device into a slices folder; see SliceOptions. */
export async function sliceImage(options: SliceOptions): Promise<SliceResult> {
  const started = performance.now();
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (
    !Number.isSafeInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE
  ) {
    throw new RangeError(
      `Invalid chunk size ${chunkSize}: must be ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE} bytes`,
    );
  }
  const name = options.name ?? basename(options.image);
  checkName(name);
  const sync = options.sync ?? true;

  const src = await openImage(options.image);
  let tmp: string | undefined;
  try {
    if (src.size === 0) throw new Error(`Cannot slice "${options.image}": the image is empty`);
    if (src.size > MAX_IMAGE_SIZE) {
      throw new RangeError(
        `Cannot slice "${options.image}": its ${src.size} bytes exceed the ${MAX_IMAGE_SIZE} allowed`,
      );
    }
    await refuseMounted(options.image, "slice");
    if (options.out === undefined && src.blockDevice) {
      throw new TypeError(
        `Cannot slice block device "${options.image}" without an output folder (give --out)`,
      );
    }
    const out = options.out ?? defaultSlicesDir(options.image);
    const existing = await lstatOrNull(out);
    if (existing && !options.force) {
      throw new Error(
        `Cannot slice "${options.image}": output "${out}" already exists (use --force to replace it)`,
      );
    }
    if (existing && !(await replaceable(out, existing))) {
      throw new Error(
        `Cannot replace "${out}": it is not a slices folder (no ${MANIFEST_FILE}); remove it yourself`,
      );
    }

    const leftovers = await removeLeftovers(out);
    tmp = leftoverPath(out, "partial");
    const chunksDir = join(tmp, CHUNKS_DIR);
    try {
      await Deno.mkdir(chunksDir, { recursive: true });
    } catch (cause) {
      throw new Error(`Cannot create "${tmp}": ${osReason(cause)}`, { cause });
    }

    const size = src.size;
    const count = chunkCount(size, chunkSize);
    const entries: ChunkEntry[] = new Array(count);
    const stored = new Set<string>();
    // How each distinct chunk is stored: its compressed length, or 0 for raw.
    const forms = new Map<string, number>();
    const pool = options.uncompressed ? undefined : new CompressPool(
      options.zstdLevel ?? DEFAULT_ZSTD_LEVEL,
      options.zstdThreads ?? Math.min(4, navigator.hardwareConcurrency || 1),
    );
    let storedBytes = 0;
    let plainBytes = 0;
    let zeroChunks = 0;
    let freeChunks = 0;
    let zeroedBytes = 0;
    let hashed = 0;
    const progress = new Progress({
      label: `slice ${name}`,
      total: size,
      mode: options.progress ?? "quiet",
      ...(options.progressWrite ? { write: options.progressWrite } : {}),
    });

    // After the read into these buffers no chunk byte is copied: the workers hash them in place
    // and the chunk files are written from them around the page cache.
    const { memory, buffers: free, scratch, batch } = chunkBuffers(
      chunkSize,
      BATCH_SCRATCH,
      SLICE_BUFFERS,
    );
    const imageMd5 = options.imageMd5 === true || pool === undefined;
    const imageSha256 = options.imageSha256 !== false || pool === undefined;
    const hasher = createHasher(
      options.hasher ?? "batch",
      memory,
      scratch,
      batch,
      imageMd5,
      imageSha256,
    );
    // Each buffer's output slot: a compressing worker puts the chunk's zstd bytes there, so it
    // reads the chunk while the hashing workers read it too (compression no longer waits for
    // the hashes), and the chunk file is written from the slot.
    const slots = pool ? outputSlots(free, chunkSize) : undefined;
    // Each chunk file is fsynced as it is written (on its own descriptor, while the hashing
    // goes on), not in a pass at the end when nothing else is left to overlap with, and
    // through O_DIRECT: the fastest and steadiest of the ways measured (BENCHMARKS.md).
    const writer = new NewFileWriter({ direct: options.direct ?? true, sync });
    const waiting: ((b: Uint8Array) => void)[] = [];
    let layout: DiskLayout | undefined;
    const release = (b: Uint8Array) => {
      const w = waiting.shift();
      if (w) w(b);
      else free.push(b);
    };
    // Out of buffers: the ones held back in a part-filled batch must go to the workers now.
    const acquire = () => {
      if (free.length) return Promise.resolve(free.pop()!);
      hasher.flush();
      return new Promise<Uint8Array>((r) => waiting.push(r));
    };
    let failure: unknown;
    const tasks = new Set<Promise<void>>();
    const done = (length: number) => {
      hashed += length;
      progress.update(hashed);
    };

    try {
      // Read while the workers start (each takes tens of milliseconds to boot).
      if (!options.raw) {
        layout = await analyzeDisk(readerOf(src), size, { keepPagefiles: options.keepPagefiles });
      }
      for (let i = 0; i < count && failure === undefined; i++) {
        const offset = i * chunkSize;
        const length = chunkLength({ size, chunkSize }, i);
        // A chunk wholly in free blocks is zeros whatever the disk holds: it is not read and
        // takes no buffer (a disk mostly free is sliced at the speed of its used blocks, as
        // partclone reads it); only the whole-image hashes take its zeros in.
        if (layout !== undefined && isWhollyFree(layout, offset, offset + length)) {
          zeroedBytes += length;
          freeChunks++;
          zeroChunks++;
          const task = hasher.pushZeros(length).then((h) => {
            entries[i] = { ...h, free: true };
            done(length);
          }).catch((err) => {
            failure ??= err;
          }).finally(() => tasks.delete(task));
          tasks.add(task);
          continue;
        }
        const buf = await acquire();
        const view = buf.subarray(0, length);
        // Free blocks become zeros (unread) before anything is hashed: the manifest describes
        // exactly the image a PC ends up with.
        try {
          zeroedBytes += await readChunk(src, layout, offset, view);
        } catch (err) {
          release(buf);
          throw err;
        }
        const zero = isAllZero(view);
        // push() posts to the hashing threads before its first await: chunks stay in order.
        const hashing = hasher.push(view, zero);
        const slot = slots?.get(buf);
        // Compressed at once, beside the hashing (the hashes are those of the plain bytes); an
        // identical chunk seen earlier is compressed for nothing, a rare cost.
        const compressing = pool && slot && !zero ? pool.compress(view, slot) : undefined;
        const task = (async () => {
          const h = await hashing;
          const z = compressing ? await compressing : 0;
          entries[i] = h;
          if (h.zero) zeroChunks++;
          else if (!stored.has(h.sha256)) {
            stored.add(h.sha256);
            if (pool) forms.set(h.sha256, z);
            const file = join(
              chunksDir,
              z > 0 ? storedFileName({ ...h, zstd: z }) : chunkFileName(h),
            );
            await writeChunk(writer, file, z > 0 ? slot!.subarray(0, z) : view);
            storedBytes += z > 0 ? z : length;
            plainBytes += length;
          }
          done(length);
        })().catch((err) => {
          failure ??= err;
        }).finally(async () => {
          tasks.delete(task);
          // A failed hash must not hand the buffer back while its compression still reads it.
          await compressing?.catch(() => {});
          release(buf);
        });
        tasks.add(task);
      }
      hasher.flush();
      await Promise.all(tasks);
      if (failure !== undefined) throw failure;
      const whole = await hasher.finish();
      progress.finish();

      // Format 1 as before when nothing was found (no table, no file system recognised, no
      // reason to give): nothing of format 2 to say. A file system kept whole is recorded with
      // its reason, for `info` to show. Format 3 whenever chunks are compressed.
      const v2 = layout !== undefined && layoutWorthRecording(layout);
      const chunks: ChunkEntry[] = v2
        ? entries
        : entries.map(({ md5, sha256, zero }) => ({ md5, sha256, zero }));
      if (pool) {
        for (const c of chunks) {
          if (c.zero) continue;
          const z = forms.get(c.sha256)!;
          if (z > 0) c.zstd = z;
          else c.raw = true;
        }
      }
      const manifest: Manifest = {
        format: pool ? MANIFEST_FORMAT_V3 : v2 ? MANIFEST_FORMAT_V2 : MANIFEST_FORMAT,
        name,
        size,
        chunkSize,
        ...(imageMd5 ? { md5: whole.md5 } : {}),
        ...(imageSha256 ? { sha256: whole.sha256 } : {}),
        chunks,
        ...(v2 ? { layout: { scheme: layout!.scheme, volumes: layout!.volumes } } : {}),
      };
      const text = serializeManifest(manifest);
      parseManifest(text); // never write a manifest this very code would refuse
      const manifestBytes = new TextEncoder().encode(text);

      if (sync) await fsyncPath(chunksDir);
      const manifestTmp = join(tmp, `${MANIFEST_FILE}.tmp`);
      await Deno.writeFile(manifestTmp, manifestBytes);
      if (sync) await fsyncPath(manifestTmp);
      await Deno.rename(manifestTmp, join(tmp, MANIFEST_FILE));
      if (sync) await fsyncPath(tmp);

      await swapIn(tmp, out, existing !== null);
      tmp = undefined;
      if (sync) await fsyncPath(dirname(out));

      return {
        manifest,
        manifestBytes,
        imageId: imageIdOf(manifestBytes),
        dir: out,
        chunks: count,
        zeroChunks,
        freeChunks,
        zeroedBytes,
        ...(layout ? { layout } : {}),
        storedChunks: stored.size,
        storedBytes,
        plainBytes,
        direct: writer.direct,
        removedLeftovers: leftovers,
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      hasher.close();
      pool?.close();
    }
  } finally {
    src.close();
    if (tmp !== undefined) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** Whether `layout` says anything: a partition table, a file system recognised, or a reason a
 * volume was kept whole (a bare image of random bytes says nothing). */
export function layoutWorthRecording(layout: DiskLayout): boolean {
  return layout.scheme !== "none" ||
    layout.volumes.some((v) => v.fs !== null || v.note !== undefined);
}

/** A page-aligned shared output slot of `chunkSize` bytes for each buffer. */
function outputSlots(buffers: Uint8Array[], chunkSize: number): Map<Uint8Array, Uint8Array> {
  const stride = Math.ceil(chunkSize / DIRECT_ALIGN) * DIRECT_ALIGN;
  const memory = alignedMemory(stride * buffers.length, { shared: true });
  return new Map(
    buffers.map((b, k) => [b, new Uint8Array(memory.buffer, k * stride, chunkSize)]),
  );
}

async function writeChunk(writer: NewFileWriter, path: string, bytes: Uint8Array) {
  try {
    await writer.write(path, bytes);
  } catch (cause) {
    throw new Error(`Cannot write chunk file "${path}": ${osReason(cause)}`, { cause });
  }
}
