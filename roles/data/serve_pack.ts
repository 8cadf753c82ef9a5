// A chunk a PC serves from its disk, zstd-compressed on the fly for a framed request when the
// manifest stores it compressed: a finished PC (every verified PC serves on) no longer sends
// the chunks that left its kept window (receiver.ts, 128 MiB) raw, 2-3 x the bytes on the wire.
// A server of its own disk (`cascade server`, DiskSource) does the same. The work runs on a
// worker (CompressPool), never on the thread that moves the bytes. Any level will do for the
// PCs: a frame is decompressed, bounded to the chunk's length, and verified.
//
// Level and bound, measured on 128 MiB of this machine's /usr files in 1 MiB chunks (one core,
// load ~2.7): level 1 314 MB/s (ratio 0.445), 2 280 MB/s (0.410), 3 215 MB/s (0.392), 5 115 MB/s.
// Level 1: a 100 Mbit/s port (12.5 MB/s of frames, ~28 MB/s of chunks) costs ~9 % of a core,
// and a 1 Gbit/s relay's ~280 MB/s of chunks about one core; level 3 would save 12 % more bytes
// for 1.5 x the CPU. A chunk takes ~3.3 ms to compress: with QUEUE_PER_WORKER (8) chunks queued
// a chunk waits <= ~27 ms, under one raw chunk's 84 ms on a 100 Mbit/s wire (a client's burst of
// requests is compressed, not sent raw); beyond that the workers are not keeping up (a loaded
// core, a 1 Gbit/s relay) and the chunk goes raw at once, so compression never slows the wire.
import {
  chunkLength,
  CompressPool,
  type Manifest,
  type StoredChunk,
} from "../../imagetools/mod.ts";
import { allocAligned } from "../../imagetools/kit/mod.ts";

export const SERVE_ZSTD_LEVEL = 1;
/** Chunks read or queued per worker beyond which a chunk is sent raw (see the header). */
export const QUEUE_PER_WORKER = 8;

export interface PackStats {
  /** Chunks compressed, and their bytes before and after. */
  packed: number;
  plainBytes: number;
  packedBytes: number;
  /** Chunks sent raw because the workers were backed up. */
  backedUp: number;
}

/** Compresses served chunks on `threads` workers (started at the first chunk), at most
 * `maxQueued` at once. */
export class ServePacker {
  #pool?: CompressPool;
  readonly maxQueued: number;
  #packing = new Map<number, Promise<StoredChunk>>();
  /** Chunk memory being read or compressed (at most maxQueued), and free again. */
  #lent = 0;
  #free: Uint8Array[] = [];
  #stats: PackStats = { packed: 0, plainBytes: 0, packedBytes: 0, backedUp: 0 };

  constructor(
    readonly level = SERVE_ZSTD_LEVEL,
    readonly threads = 1,
    maxQueued = QUEUE_PER_WORKER * threads,
  ) {
    this.maxQueued = maxQueued;
  }

  /** `plain` as a zstd frame, or null when the workers are backed up or it does not shrink
   * (the caller sends it raw). `plain` is not changed. */
  async pack(plain: Uint8Array): Promise<Uint8Array | null> {
    if (this.#backedUp()) return null;
    const s = await this.#packRead(plain.length, () => Promise.resolve(plain));
    return s.zstd ? s.bytes : null;
  }

  /** Chunk `index` of `m`, read from a disk by `read`, as a framed request gets it: compressed
   * when the manifest stores it zstd and the workers keep up, else raw. A chunk the slicer found
   * incompressible (raw in the manifest) or a manifest without compressed chunks (format 1-2,
   * maybe older PCs) goes raw without trying. Two requests for one chunk share the work.
   * `read(into)` may read into `into` (the chunk's length of page-aligned shared memory, so an
   * O_DIRECT disk reads straight into what the worker compresses) or return other bytes. */
  fromDisk(
    m: Manifest,
    index: number,
    read: (into?: Uint8Array) => Promise<Uint8Array>,
  ): Promise<StoredChunk> {
    const entry = m.chunks[index];
    if (entry.zero || entry.zstd === undefined) {
      return read().then((bytes) => ({ zstd: false, bytes }));
    }
    let packing = this.#packing.get(index);
    if (!packing) {
      packing = (this.#backedUp()
        ? read().then((bytes) => ({ zstd: false, bytes }))
        : this.#packRead(chunkLength(m, index), read)).finally(() =>
          this.#packing.delete(index)
        );
      this.#packing.set(index, packing);
    }
    return packing;
  }

  /** True (and counted) when maxQueued chunks are already being read or compressed. */
  #backedUp(): boolean {
    if (this.#lent < this.maxQueued) return false;
    this.#stats.backedUp++;
    return true;
  }

  /** `length` bytes from `read`, in pooled memory, compressed on a worker: the frame (copied
   * out, so the memory goes to the next chunk), or the bytes raw when they do not shrink. */
  async #packRead(
    length: number,
    read: (into: Uint8Array) => Promise<Uint8Array>,
  ): Promise<StoredChunk> {
    this.#pool ??= new CompressPool(this.level, this.threads);
    const memory = this.#take(length);
    try {
      const view = memory.subarray(0, length);
      const plain = await read(view);
      if (plain !== view) view.set(plain);
      const into = memory.subarray(length, 2 * length);
      const n = await this.#pool.compress(view, into);
      if (n === 0) return { zstd: false, bytes: plain === view ? view.slice() : plain };
      this.#stats.packed++;
      this.#stats.plainBytes += length;
      this.#stats.packedBytes += n;
      return { zstd: true, bytes: into.slice(0, n) };
    } finally {
      this.#give(memory);
    }
  }

  /** Memory for a chunk of `length` and its frame, the chunk first: a free one, else a new one
   * (a larger chunk replaces smaller ones). Two fresh SharedArrayBuffers a chunk cost their
   * allocation, zero-filling and unmapping, and a copy of the chunk read into a third. */
  #take(length: number): Uint8Array {
    this.#lent++;
    while (this.#free.length > 0) {
      const m = this.#free.pop()!;
      if (m.length >= 2 * length) return m;
    }
    return allocAligned(2 * length, { shared: true });
  }

  #give(memory: Uint8Array) {
    this.#lent--;
    if (this.#free.length < this.maxQueued) this.#free.push(memory);
  }

  stats(): PackStats {
    return { ...this.#stats };
  }

  close() {
    this.#pool?.close();
    this.#pool = undefined;
  }
}
