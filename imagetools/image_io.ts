// The I/O shell around images, disks and slices folders, for every part of Cascade: open an
// image or block device, learn its size, read ranges into the caller's (reused) buffers
// (positional reads, so concurrent readers never share a cursor), and read a slices folder
// back. Nothing here ever holds a whole image in memory.
import * as fs from "node:fs";
import { basename, dirname, join } from "node:path";
import {
  chunkCount,
  chunkLength,
  imageIdOf,
  type Manifest,
  parseManifest,
  storedFileName,
  storedLength,
} from "./manifest.ts";
import { ChunkDecodeError, decompressChunk } from "./zstd_chunks.ts";

export const MANIFEST_FILE = "manifest.json";
export const CHUNKS_DIR = "chunks";

/** The OS's reason from a Deno or node:fs error, e.g. "no such file or directory". */
export function osReason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const m = /^(.*?) \(os error \d+\)/.exec(msg) ?? /^E[A-Z]+: (.*?), \w+ '.*'$/.exec(msg);
  const reason = m ? m[1] : msg;
  return reason.charAt(0).toLowerCase() + reason.slice(1);
}

/** Stat a path, turning OS errors into `Cannot <action> "<path>": <reason>`. */
export async function statOrThrow(path: string, action: string): Promise<Deno.FileInfo> {
  try {
    return await Deno.stat(path);
  } catch (cause) {
    throw new Error(`Cannot ${action} "${path}": ${osReason(cause)}`, { cause });
  }
}

/** Size of a regular file or a block device (stat says 0 for a device: seek to its end).
 * `info` is the path's stat when the caller has it already. */
export async function sizeOf(
  path: string,
  info?: Deno.FileInfo,
): Promise<{ size: number; isBlockDevice: boolean }> {
  const st = info ?? await Deno.stat(path);
  if (st.isBlockDevice) {
    using f = await Deno.open(path, { read: true });
    return { size: await f.seek(0, Deno.SeekMode.End), isBlockDevice: true };
  }
  return { size: st.size, isBlockDevice: false };
}

/** Read until `into` is full or the file ends, at `position` (pread: safe with concurrent
 * callers on one fd); returns the bytes read. */
export async function readFullyAt(
  fd: number,
  into: Uint8Array,
  position: number,
): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const n = await new Promise<number>((resolve, reject) =>
      fs.read(
        fd,
        into,
        done,
        into.length - done,
        position + done,
        (err, bytes) => err ? reject(err) : resolve(bytes),
      )
    );
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** Write all of `bytes` (a single write may be short on devices). */
export async function writeFully(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

/** What chunks are read from and checked against a manifest: an image, a disk, a target being
 * written (roles/data's TargetDisk reads like this too). */
export interface ImageReader {
  /** Names it in errors. */
  readonly path: string;
  /** Bytes it holds (a device may hold more than the image). */
  readonly size: number;
  /** Fill `into` from `offset`; returns the bytes read (fewer only at the end). */
  readAt(offset: number, into: Uint8Array): Promise<number>;
}

/** An image file or block device open for reading (reads may run concurrently). */
export interface ImageSource extends ImageReader {
  blockDevice: boolean;
  close(): void;
}

/** Open a raw image file or a block device for reading; `what` names it in errors. */
export async function openImage(path: string, what = "image"): Promise<ImageSource> {
  const info = await statOrThrow(path, `open ${what}`);
  if (info.isDirectory) throw new Error(`Cannot read ${what} "${path}": it is a directory`);
  if (!info.isFile && !info.isBlockDevice) {
    throw new Error(`Cannot read ${what} "${path}": it is not a regular file or a block device`);
  }
  let fd: number;
  try {
    fd = fs.openSync(path, "r");
  } catch (cause) {
    throw new Error(`Cannot open ${what} "${path}": ${osReason(cause)}`, { cause });
  }
  try {
    const { size } = await sizeOf(path, info);
    let closed = false;
    return {
      path,
      size,
      blockDevice: Boolean(info.isBlockDevice),
      async readAt(offset, buf) {
        try {
          return await readFullyAt(fd, buf, offset);
        } catch (cause) {
          throw new Error(
            `Cannot read ${what} "${path}" at offset ${offset}: ${osReason(cause)}`,
            { cause },
          );
        }
      },
      close() {
        if (closed) return;
        closed = true;
        fs.closeSync(fd);
      },
    };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

export interface LoadedManifest {
  manifest: Manifest;
  /** The manifest file's exact bytes (the image id is their SHA-256). */
  bytes: Uint8Array;
  imageId: string;
  /** Path of the manifest file that was read. */
  path: string;
  /** The folder holding it (a slices folder keeps its chunks/ there). */
  dir: string;
}

/** Read and strictly parse a manifest, given a slices folder or the manifest file itself. */
export async function loadManifest(pathToSlicesDirOrManifestFile: string): Promise<LoadedManifest> {
  const given = pathToSlicesDirOrManifestFile;
  const info = await statOrThrow(given, "open manifest");
  const path = info.isDirectory ? join(given, MANIFEST_FILE) : given;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (cause) {
    throw new Error(`Cannot read manifest "${path}": ${osReason(cause)}`, { cause });
  }
  let manifest: Manifest;
  try {
    manifest = parseManifest(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    const reason = cause instanceof TypeError && !/^Invalid manifest/.test(cause.message)
      ? "Invalid manifest: not UTF-8 text"
      : (cause as Error).message;
    throw new Error(`Cannot load manifest "${path}": ${reason}`, { cause });
  }
  return { manifest, bytes, imageId: imageIdOf(bytes), path, dir: dirname(path) };
}

/** A chunk as it is stored and sent: zstd-compressed (format 3), or its bytes as they are. */
export interface StoredChunk {
  zstd: boolean;
  bytes: Uint8Array;
}

/** A slices folder open for reading (what the fake server serves from). */
export interface Slices {
  manifest: Manifest;
  manifestBytes: Uint8Array;
  imageId: string;
  /** The slices folder. */
  dir: string;
  /** Path of a chunk's file (derived from its hash only), or null for a zero chunk. */
  chunkPath(index: number): string | null;
  /** A chunk's bytes (read into `into` when given: exactly the chunk's length), decompressed
   * when stored zstd: zeros for a zero chunk; a clear error when its file is missing, has
   * another length or does not decompress. Not hashed: the caller verifies. */
  readChunk(index: number, into?: Uint8Array): Promise<Uint8Array>;
  /** A non-zero chunk's file as it is (what a chunk server sends): its manifest length. */
  readStored(index: number): Promise<StoredChunk>;
  /** Every stored chunk's file is there with its length (by stat, not read): the problems
   * found, e.g. `chunks/<sha256>.chunk (chunk 3) is missing`; none when whole. */
  checkFiles(): Promise<string[]>;
}

/** Open a slices folder (or its manifest.json): chunk files are found by hash, never by a path. */
export async function openSlices(dir: string): Promise<Slices> {
  const loaded = await loadManifest(dir);
  const { manifest } = loaded;
  const count = chunkCount(manifest.size, manifest.chunkSize);
  const where = loaded.dir;
  const checkIndex = (index: number) => {
    if (!Number.isSafeInteger(index) || index < 0 || index >= count) {
      throw new RangeError(
        `Invalid chunk index ${index} for "${where}": the image has chunks 0..${count - 1}`,
      );
    }
  };
  const chunkPath = (index: number) => {
    checkIndex(index);
    const entry = manifest.chunks[index];
    return entry.zero ? null : join(where, CHUNKS_DIR, storedFileName(entry));
  };
  /** Read chunk `index`'s file, which must hold exactly `out.length` bytes, into `out`. */
  const readFile = async (index: number, out: Uint8Array): Promise<Uint8Array> => {
    const path = chunkPath(index)!;
    const fail = (why: string, cause?: unknown) =>
      new Error(`Cannot read chunk ${index} of "${where}": file "${path}" ${why}`, { cause });
    let fd: number;
    try {
      fd = fs.openSync(path, "r");
    } catch (cause) {
      const missing = (cause as { code?: string }).code === "ENOENT";
      throw fail(missing ? "is missing" : osReason(cause), cause);
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size !== out.length) throw fail(`holds ${size} bytes, expected ${out.length}`);
      let n: number;
      try {
        n = await readFullyAt(fd, out, 0);
      } catch (cause) {
        throw fail(osReason(cause), cause);
      }
      if (n !== out.length) throw fail(`holds ${n} bytes, expected ${out.length}`);
      return out;
    } finally {
      fs.closeSync(fd);
    }
  };
  return {
    manifest,
    manifestBytes: loaded.bytes,
    imageId: loaded.imageId,
    dir: where,
    chunkPath,
    async readChunk(index, into) {
      const length = chunkLength(manifest, index);
      if (into && into.length !== length) {
        throw new RangeError(`Cannot read chunk ${index} (${length} bytes) into ${into.length}`);
      }
      if (chunkPath(index) === null) return into ? into.fill(0) : new Uint8Array(length);
      if (manifest.chunks[index].zstd === undefined) {
        return await readFile(index, into ?? new Uint8Array(length));
      }
      const stored = await readFile(index, new Uint8Array(storedLength(manifest, index)));
      try {
        // Without `into`, the decompressed buffer itself: a second buffer and a copy of each
        // chunk were a quarter of a re-image's server CPU (its delta answers).
        const plain = decompressChunk(stored, length);
        if (!into) return plain;
        into.set(plain);
        return into;
      } catch (cause) {
        if (!(cause instanceof ChunkDecodeError)) throw cause;
        throw new Error(
          `Cannot read chunk ${index} of "${where}": file "${chunkPath(index)}" ${cause.message}`,
          { cause },
        );
      }
    },
    async readStored(index) {
      if (chunkPath(index) === null) {
        throw new RangeError(
          `Cannot read chunk ${index} of "${where}": a zero chunk is not stored`,
        );
      }
      const bytes = await readFile(index, new Uint8Array(storedLength(manifest, index)));
      return { zstd: manifest.chunks[index].zstd !== undefined, bytes };
    },
    async checkFiles() {
      const problems: string[] = [];
      const seen = new Set<string>();
      for (let i = 0; i < count; i++) {
        const entry = manifest.chunks[i];
        if (entry.zero || seen.has(entry.sha256)) continue;
        seen.add(entry.sha256);
        const file = join(CHUNKS_DIR, storedFileName(entry));
        const want = storedLength(manifest, i);
        try {
          const st = await Deno.stat(join(where, file));
          if (st.size !== want) {
            problems.push(`${file} (chunk ${i}) holds ${st.size} bytes, not ${want}`);
          }
        } catch {
          problems.push(`${file} (chunk ${i}) is missing`);
        }
      }
      return problems;
    },
  };
}

/** Default slices folder for an image: "<image>.cascade" beside it. */
export function defaultSlicesDir(image: string): string {
  return join(dirname(image), `${basename(image)}.cascade`);
}
