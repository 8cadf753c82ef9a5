// Writing around the page cache (O_DIRECT): page-aligned buffers, positional writes into a disk
// or file that is already open, and whole new files (slicing's chunk files).
//
// WHY O_DIRECT: buffered writes cost the kernel a page-cache copy and page allocation (more, and
// varying, when the cache fills memory and pages must be reclaimed); O_DIRECT costs a fraction
// of that (figures: BENCHMARKS.md), plus one copy into an aligned buffer where the caller's bytes
// are not aligned already. It also keeps a 6 GB image from evicting everything else from the
// cache. JS cannot ask for an aligned allocation, but a WebAssembly.Memory's
// bytes start on a page boundary: allocAligned hands out such buffers (shared ones too, which
// hashing workers read in place) and remembers them, so writing from them needs no copy at all.
import * as fs from "node:fs";
import { allocAligned, DIRECT_ALIGN, isAligned } from "./kit/mod.ts";

/** True for the error a device or file system gives when it refuses O_DIRECT (or its alignment). */
export function isDirectRefused(err: unknown): boolean {
  return err instanceof Error &&
    ((err as { code?: string }).code === "EINVAL" || /os error 22\b|EINVAL/.test(err.message));
}

/** pwrite all of `bytes` at `offset` (a single write may be short on devices). */
export async function pwriteFully(fd: number, bytes: Uint8Array, offset: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    done += await new Promise<number>((resolve, reject) =>
      fs.write(
        fd,
        bytes,
        done,
        bytes.length - done,
        offset + done,
        (err, n) => err ? reject(err) : resolve(n),
      )
    );
  }
}

/** Writes shorter than this bypass O_DIRECT (see DirectWriter.writeAt). */
export const SMALL_WRITE = 64 * 1024;

/** Reused aligned buffers, by length (a chunk-sized pipeline asks for one or two lengths). */
class StagingPool {
  #free = new Map<number, Uint8Array[]>();

  acquire(length: number): Uint8Array {
    return this.#free.get(length)?.pop() ?? allocAligned(length);
  }

  release(stage: Uint8Array) {
    let free = this.#free.get(stage.length);
    if (!free) this.#free.set(stage.length, free = []);
    free.push(stage);
  }
}

/** Write `bytes` from `fd`'s `offset` through O_DIRECT: straight from `bytes` when aligned,
 * else through a staging copy. `length` is a multiple of DIRECT_ALIGN. */
async function writeAligned(
  staging: StagingPool,
  fd: number,
  bytes: Uint8Array,
  offset: number,
): Promise<void> {
  if (isAligned(bytes)) return await pwriteFully(fd, bytes, offset);
  const stage = staging.acquire(bytes.length);
  try {
    stage.set(bytes);
    await pwriteFully(fd, stage, offset);
  } finally {
    staging.release(stage);
  }
}

/**
 * Positional writes into an open disk or file, through O_DIRECT where offset and length allow.
 * Needs two descriptors of the same file: `fd` (buffered, for unaligned pieces) and `directFd`
 * (opened with O_DIRECT, or -1 for none). The caller owns, syncs and closes both.
 */
export class DirectWriter {
  #direct: boolean;
  #staging = new StagingPool();

  constructor(private readonly fd: number, private readonly directFd: number) {
    this.#direct = directFd >= 0;
  }

  /** Writes bypass the page cache (false once the device refused an O_DIRECT write). */
  get direct(): boolean {
    return this.#direct;
  }

  /** Write all of `bytes` at `offset`; the caller must not change them until this settles. */
  async writeAt(offset: number, bytes: Uint8Array): Promise<void> {
    // A small write goes through the page cache (a copy of a few KiB, on disk by the caller's
    // sync): an O_DIRECT write waits for the device, and node:fs's write in Deno 2.9 holds the
    // main thread while it does (16 MiB writes: a 5 ms timer ran 55-62 ms late). A re-image's
    // deltas write thousands of runs of 4 KiB blocks (1.9 s of a 4 GiB re-image's main thread).
    const aligned = this.#direct && offset % DIRECT_ALIGN === 0 && bytes.length >= SMALL_WRITE
      ? bytes.length - (bytes.length % DIRECT_ALIGN)
      : 0;
    if (aligned > 0) {
      try {
        await writeAligned(this.#staging, this.directFd, bytes.subarray(0, aligned), offset);
      } catch (err) {
        // This device wants another alignment after all: use the page cache from now on.
        if (!isDirectRefused(err)) throw err;
        this.#direct = false;
        return await pwriteFully(this.fd, bytes, offset);
      }
    }
    // The unaligned rest (the image's last bytes, or odd chunk sizes) goes through the cache.
    if (aligned < bytes.length) {
      await pwriteFully(this.fd, bytes.subarray(aligned), offset + aligned);
    }
  }
}

function open(path: string, flags: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.open(path, flags, 0o644, (err, fd) => err ? reject(err) : resolve(fd))
  );
}

function close(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => err ? reject(err) : resolve()));
}

function fsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => err ? reject(err) : resolve()));
}

function ftruncate(fd: number, length: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.ftruncate(fd, length, (err) => err ? reject(err) : resolve())
  );
}

export interface NewFileWriterOptions {
  /** Try O_DIRECT (default true). */
  direct?: boolean;
  /** fsync each file before closing it (default false). */
  sync?: boolean;
}

// Deno runs node:fs writes (the only way to an O_DIRECT descriptor) synchronously on the calling
// thread, even the callback forms: write() holds its caller's thread for the disk's latency.
// Writing on a thread of a writer's own was tried for slicing and was no faster, at more CPU
// (BENCHMARKS.md), so the writes stay on the caller's thread; fsync and open go to Deno's
// blocking pool anyway.
/**
 * Writes whole new files (each path must not exist yet), through O_DIRECT unless the file
 * system refuses it, in which case this writer uses the page cache from then on. With `sync`,
 * a file's bytes are durable when write() resolves (its folder entry is the caller's to sync).
 */
export class NewFileWriter {
  #direct: boolean;
  #sync: boolean;
  #staging = new StagingPool();

  constructor(opts: NewFileWriterOptions = {}) {
    this.#direct = opts.direct ?? true;
    this.#sync = opts.sync ?? false;
  }

  /** Files are written around the page cache. */
  get direct(): boolean {
    return this.#direct;
  }

  /** Create `path` (failing if it exists) holding exactly `bytes`. */
  async write(path: string, bytes: Uint8Array): Promise<void> {
    const { O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_DIRECT } = fs.constants;
    if (!this.#direct) return await this.#writeBuffered(path, bytes, O_EXCL);
    let fd: number;
    try {
      fd = await open(path, O_WRONLY | O_CREAT | O_EXCL | O_DIRECT);
    } catch (err) {
      if (!isDirectRefused(err)) throw err;
      this.#direct = false; // refused at open: nothing was created
      return await this.#writeBuffered(path, bytes, O_EXCL);
    }
    try {
      await this.#writeDirect(fd, bytes);
      if (this.#sync) await fsync(fd);
      return;
    } catch (err) {
      if (!isDirectRefused(err)) throw err;
      this.#direct = false; // refused at a write: the file starts over through the cache
    } finally {
      await close(fd);
    }
    await this.#writeBuffered(path, bytes, O_TRUNC);
  }

  // A length that is not a multiple of the alignment: the aligned head straight from `bytes`,
  // the tail zero-padded in a staging buffer, then the file cut back to its exact length (one
  // descriptor, and a copy of under 4 KiB, instead of a second, buffered open for the tail).
  async #writeDirect(fd: number, bytes: Uint8Array) {
    const head = bytes.length - (bytes.length % DIRECT_ALIGN);
    if (head > 0) await writeAligned(this.#staging, fd, bytes.subarray(0, head), 0);
    if (head === bytes.length) return;
    const stage = this.#staging.acquire(DIRECT_ALIGN);
    try {
      stage.set(bytes.subarray(head));
      stage.fill(0, bytes.length - head);
      await pwriteFully(fd, stage, head);
    } finally {
      this.#staging.release(stage);
    }
    await ftruncate(fd, bytes.length);
  }

  async #writeBuffered(path: string, bytes: Uint8Array, mode: number) {
    const { O_WRONLY, O_CREAT } = fs.constants;
    const fd = await open(path, O_WRONLY | O_CREAT | mode);
    try {
      await pwriteFully(fd, bytes, 0);
      if (this.#sync) await fsync(fd);
    } finally {
      await close(fd);
    }
  }
}
