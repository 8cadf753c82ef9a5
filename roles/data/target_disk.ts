// The disk a client writes: a block device, or a file standing in for one (tests, the demo).
// Positional reads and writes (pread/pwrite through node:fs), so concurrent calls never race
// on a shared file offset.
import * as fs from "node:fs";
import {
  DirectWriter,
  type ImageReader,
  isDirectRefused,
  readFullyAt,
  refuseMounted,
  sizeOf,
} from "../../imagetools/mod.ts";
import { DIRECT_ALIGN, formatBytes, isAligned } from "../../imagetools/kit/mod.ts";

/** The disk being written; it reads like any image (imagetools' ImageReader), so read-back
 * checks it as `cascade verify` checks an image. */
export interface TargetDisk extends ImageReader {
  isBlockDevice: boolean;
  /** True when openTarget created or extended an empty file: every byte reads as zero. */
  fresh?: boolean;
  /** Writes bypass the page cache (O_DIRECT). */
  direct?: boolean;
  /** A file or device another thread may open to read these same bytes (the scan's worker,
   * scan_worker.ts); absent for a target that lives in this process only. */
  readonly sharedPath?: string;
  writeAt(offset: number, bytes: Uint8Array): Promise<void>;
  sync(): Promise<void>;
  close(): void;
}

class FdTarget implements TargetDisk {
  #closed = false;
  #writer: DirectWriter;

  constructor(
    readonly path: string,
    readonly size: number,
    readonly isBlockDevice: boolean,
    readonly fresh: boolean,
    private readonly fd: number,
    /** The same file opened with O_DIRECT, or -1. */
    private readonly directFd: number,
  ) {
    this.#writer = new DirectWriter(fd, directFd);
  }

  get sharedPath(): string {
    return this.path;
  }

  /** Writes bypass the page cache (O_DIRECT) where the offset allows. */
  get direct(): boolean {
    return this.#writer.direct;
  }

  // O_DIRECT (imagetools/direct_write.ts says why): aligned pieces around the page cache, the
  // unaligned rest through it. readBack then reads the disk, not the cache.
  writeAt(offset: number, bytes: Uint8Array): Promise<void> {
    return this.#writer.writeAt(offset, bytes);
  }

  /** Through O_DIRECT too where `into` is aligned memory (verify-behind's buffer) and the
   * offset allows: a buffered read of what an O_DIRECT write left on disk costs the kernel a
   * page-cache page per 4 KiB, filled, copied and freed again, for bytes read once. */
  async readAt(offset: number, into: Uint8Array): Promise<number> {
    const aligned = this.#writer.direct && offset % DIRECT_ALIGN === 0 && isAligned(into)
      ? into.length - (into.length % DIRECT_ALIGN)
      : 0;
    if (aligned === 0) return await readFullyAt(this.fd, into, offset);
    let n: number;
    try {
      n = await readFullyAt(this.directFd, into.subarray(0, aligned), offset);
    } catch (err) {
      if (!isDirectRefused(err)) throw err;
      return await readFullyAt(this.fd, into, offset);
    }
    if (n < aligned || aligned === into.length) return n;
    return n + await readFullyAt(this.fd, into.subarray(aligned), offset + aligned);
  }

  sync(): Promise<void> {
    return new Promise((resolve, reject) => fs.fsync(this.fd, (e) => e ? reject(e) : resolve()));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    fs.closeSync(this.fd);
    if (this.directFd >= 0) fs.closeSync(this.directFd);
  }
}

/**
 * Open the disk to write the image to (writes bypass the page cache with O_DIRECT where the
 * file system allows; `direct: false` turns that off). A regular file that is missing or empty
 * is created and extended to imageSize (sparse: it reads as zeros, so zero chunks need no
 * writing). A block device or an existing non-empty file smaller than imageSize is refused
 * before anything is written. Block devices are sized by seeking to their end (stat says 0).
 */
export async function openTarget(
  path: string,
  imageSize: number,
  imageName: string,
  opts: { direct?: boolean } = {},
): Promise<TargetDisk> {
  let existing: { size: number; isBlockDevice: boolean } | undefined;
  try {
    const st = await Deno.stat(path);
    if (!st.isFile && !st.isBlockDevice) {
      throw new TypeError(
        `Cannot use target "${path}": it is neither a block device nor a regular file`,
      );
    }
    existing = await sizeOf(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      if (err instanceof TypeError) throw err;
      throw new Error(`Cannot use target "${path}": ${(err as Error).message}`, { cause: err });
    }
  }
  // A lab PC netboots with nothing mounted; a disk in use here is the wrong disk.
  if (existing) await refuseMounted(path, "use target", true);
  const empty = !existing || (!existing.isBlockDevice && existing.size === 0);
  if (existing && !empty && existing.size < imageSize) {
    throw new RangeError(
      `Cannot use target "${path}": it holds ${
        formatBytes(existing.size)
      } but the image "${imageName}" needs ${formatBytes(imageSize)}`,
    );
  }
  let fd: number;
  try {
    // No O_TRUNC: an existing disk keeps its bytes (a resume scans them).
    fd = fs.openSync(path, fs.constants.O_RDWR | (existing ? 0 : fs.constants.O_CREAT), 0o644);
  } catch (cause) {
    throw new Error(`Cannot open target "${path}" for writing: ${(cause as Error).message}`, {
      cause,
    });
  }
  let size = existing?.size ?? 0;
  if (empty) {
    try {
      fs.ftruncateSync(fd, imageSize);
    } catch (cause) {
      fs.closeSync(fd);
      throw new Error(
        `Cannot extend target "${path}" to ${formatBytes(imageSize)}: ${(cause as Error).message}`,
        { cause },
      );
    }
    size = imageSize;
  }
  let directFd = -1;
  if (opts.direct ?? true) {
    try {
      directFd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_DIRECT);
    } catch {
      // tmpfs and some others refuse O_DIRECT: everything goes through the page cache.
    }
  }
  return new FdTarget(path, size, existing?.isBlockDevice ?? false, empty, fd, directFd);
}
