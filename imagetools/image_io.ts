// The I/O shell around images, disks and slices folders: open an image or block device, learn
// its size, read ranges into the caller's (reused) buffers, and read a slices folder back.
// Nothing here ever holds a whole image in memory.
import { basename, dirname, join } from "node:path";
import {
  chunkCount,
  chunkFileName,
  chunkLength,
  imageIdOf,
  type Manifest,
  parseManifest,
} from "./manifest.ts";

export const MANIFEST_FILE = "manifest.json";
export const CHUNKS_DIR = "chunks";

/** The OS's reason from a Deno error, e.g. "no such file or directory". */
export function osReason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const m = /^(.*?) \(os error \d+\)/.exec(msg);
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

/** Size of an open file or block device: stat says 0 for a device, so seek to its end. */
export async function sizeOf(file: Deno.FsFile, info: Deno.FileInfo): Promise<number> {
  if (info.isFile) return info.size;
  const end = await file.seek(0, Deno.SeekMode.End);
  await file.seek(0, Deno.SeekMode.Start);
  return end;
}

/** Read until `buf` is full or the file ends; returns the bytes read. */
export async function readFully(file: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const n = await file.read(buf.subarray(got));
    if (n === null || n === 0) break;
    got += n;
  }
  return got;
}

/** Write all of `bytes` (a single write may be short on devices). */
export async function writeFully(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

/** An image file or block device open for reading. One read at a time (reads share a cursor). */
export interface ImageSource {
  path: string;
  size: number;
  blockDevice: boolean;
  /** Fill `buf` from `offset` (fewer bytes only at the end of the image); returns bytes read. */
  readAt(offset: number, buf: Uint8Array): Promise<number>;
  close(): void;
}

/** Open a raw image file or a block device for reading; `what` names it in errors. */
export async function openImage(path: string, what = "image"): Promise<ImageSource> {
  const info = await statOrThrow(path, `open ${what}`);
  if (info.isDirectory) throw new Error(`Cannot read ${what} "${path}": it is a directory`);
  if (!info.isFile && !info.isBlockDevice) {
    throw new Error(`Cannot read ${what} "${path}": it is not a regular file or a block device`);
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (cause) {
    throw new Error(`Cannot open ${what} "${path}": ${osReason(cause)}`, { cause });
  }
  try {
    const size = await sizeOf(file, info);
    let pos = 0;
    return {
      path,
      size,
      blockDevice: Boolean(info.isBlockDevice),
      async readAt(offset, buf) {
        if (offset !== pos) await file.seek(offset, Deno.SeekMode.Start);
        let n: number;
        try {
          n = await readFully(file, buf);
        } catch (cause) {
          pos = -1;
          throw new Error(
            `Cannot read ${what} "${path}" at offset ${offset}: ${osReason(cause)}`,
            { cause },
          );
        }
        pos = offset + n;
        return n;
      },
      close() {
        try {
          file.close();
        } catch { /* already closed */ }
      },
    };
  } catch (err) {
    file.close();
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

/** A slices folder open for reading (what the fake server serves from). */
export interface Slices {
  manifest: Manifest;
  manifestBytes: Uint8Array;
  imageId: string;
  /** The slices folder. */
  dir: string;
  /** Path of a chunk's file (derived from its hash only), or null for a zero chunk. */
  chunkPath(index: number): string | null;
  /** A chunk's bytes (read into `into` when given: exactly the chunk's length): zeros for a
   * zero chunk; a clear error when its file is missing or has another length. */
  readChunk(index: number, into?: Uint8Array): Promise<Uint8Array>;
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
    return entry.zero ? null : join(where, CHUNKS_DIR, chunkFileName(entry));
  };
  return {
    manifest,
    manifestBytes: loaded.bytes,
    imageId: loaded.imageId,
    dir: where,
    chunkPath,
    async readChunk(index, into) {
      const path = chunkPath(index);
      const length = chunkLength(manifest, index);
      if (into && into.length !== length) {
        throw new RangeError(`Cannot read chunk ${index} (${length} bytes) into ${into.length}`);
      }
      const out = into ?? new Uint8Array(length);
      if (path === null) return out.fill(0);
      const fail = (why: string, cause?: unknown) =>
        new Error(`Cannot read chunk ${index} of "${where}": file "${path}" ${why}`, { cause });
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path, { read: true });
      } catch (cause) {
        throw fail(cause instanceof Deno.errors.NotFound ? "is missing" : osReason(cause), cause);
      }
      try {
        const size = (await file.stat()).size;
        if (size !== length) throw fail(`holds ${size} bytes, expected ${length}`);
        let n: number;
        try {
          n = await readFully(file, out);
        } catch (cause) {
          throw fail(osReason(cause), cause);
        }
        if (n !== length) throw fail(`holds ${n} bytes, expected ${length}`);
        return out;
      } finally {
        file.close();
      }
    },
  };
}

/** Default slices folder for an image: "<image>.cascade" beside it. */
export function defaultSlicesDir(image: string): string {
  return join(dirname(image), `${basename(image)}.cascade`);
}
