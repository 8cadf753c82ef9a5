// Chunk hashing on worker threads, for chunks that lie in one shared WebAssembly.Memory, handed
// over in batches: BatchImageHasher for slicing (each chunk's MD5 and SHA-256 and the whole
// image's), ChunkBatchHasher for checking chunks against a manifest (verify, assemble).
//
// WHY slicing splits its work this way: each whole-image hash is one chain over every byte, the
// zeros of free space included (nothing can share it out), so each gets a thread of its own; a
// third does the chunks' SHA-256s and MD5s, eight chunks at once in WebAssembly SIMD lanes
// (md5_multi.ts). The whole-image MD5 (0.6 GB/s, a third of SHA-256's speed here) is computed
// only when asked for: on a mostly free disk its chain alone took longer than partclone | zstd
// takes for the whole disk (BENCHMARKS.md).
//
// Batches, because eight lanes want eight chunks at once, and one message per batch instead of
// two per chunk. The worker writes each chunk's MD5 padding into the MD5_PAD_ROOM bytes that
// must follow the chunk in the memory (never into the chunk itself), so it hashes in place.
import { isAllZero } from "./chunk_hash.ts";
import type { ChunkHashes, ImageHasher } from "./chunk_hash.ts";
import { zeroChunkHashes } from "./chunk_hash.ts";
import { alignedMemory, DIRECT_ALIGN } from "../kit/mod.ts";
import { md5LanesModule } from "./md5_multi.ts";
import { WorkerRpc } from "../kit/mod.ts";

/** Bytes after each chunk that the hasher may overwrite with MD5 padding (0x80, zeros, the
 * bit length: at most 72 bytes past the chunk's end). */
export const MD5_PAD_ROOM = 72;

/** Bytes of the memory the lanes' states take (two groups of four lanes, 16-byte aligned). */
export const BATCH_SCRATCH = 128;

/** The most chunks one batch holds. */
export const MAX_BATCH = 64;

const WORKER_SOURCE = `
import { createHash } from "node:crypto";
const INIT = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
let role, memory, scratch, running, lanes4, lanes8, zeros = new Uint8Array(0);

const instance = (bytes) =>
  new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports.md5;

// MD5 of 1 to 4 × groups chunks of one length, in place: pad each (past its end), run every
// lane over the padded blocks (missing lanes repeat the first chunk), read the digests out.
function md5Lanes(run, groups, chunks) {
  const length = chunks[0].length;
  const blocks = Math.ceil((length + 9) / 64);
  const bytes = new Uint8Array(memory.buffer);
  const view = new DataView(memory.buffer);
  for (const c of chunks) {
    const end = c.offset + blocks * 64;
    bytes[c.offset + length] = 0x80;
    bytes.fill(0, c.offset + length + 1, end - 8);
    view.setUint32(end - 8, (length * 8) >>> 0, true);
    view.setUint32(end - 4, Math.floor((length * 8) / 2 ** 32), true);
  }
  const state = new Uint32Array(memory.buffer, scratch, 16 * groups);
  for (let g = 0; g < groups; g++) {
    for (let k = 0; k < 4; k++) state.fill(INIT[k], 16 * g + 4 * k, 16 * g + 4 * k + 4);
  }
  const at = [];
  for (let l = 0; l < 4 * groups; l++) at.push(chunks[Math.min(l, chunks.length - 1)].offset);
  run(scratch, ...at, blocks);
  return chunks.map((_, l) => {
    const base = 16 * (l >> 2) + (l & 3);
    let hex = "";
    for (let k = 0; k < 4; k++) {
      const w = state[base + 4 * k];
      hex += HEX[w & 255] + HEX[(w >>> 8) & 255] + HEX[(w >>> 16) & 255] + HEX[w >>> 24];
    }
    return hex;
  });
}

// Eight lanes from five chunks up, four from three: below that one node:crypto pass is cheaper.
function chunkMd5s(chunks, views) {
  const out = [];
  for (let i = 0; i < chunks.length; i += 8) {
    const group = chunks.slice(i, i + 8);
    if (lanes8 && group.length >= 5) out.push(...md5Lanes(lanes8, 2, group));
    else if (lanes4 && group.length >= 3) out.push(...md5Lanes(lanes4, 1, group));
    else for (let k = i; k < i + group.length; k++) {
      out.push(createHash("md5").update(views[k]).digest("hex"));
    }
  }
  return out;
}

self.onmessage = (e) => {
  const m = e.data;
  try {
    if (m.init) {
      ({ role, memory, scratch } = m);
      running = m.feed === false ? null : createHash(role === "image-md5" ? "md5" : "sha256");
      // "image-md5" and "image-sha256" keep one chain; "chunks" hashes each chunk (and feeds a
      // chain as well, unless told not to).
      if (role === "chunks") {
        try {
          lanes4 = instance(m.lanes4);
          lanes8 = instance(m.lanes8);
        } catch {
          lanes4 = lanes8 = null; // no WebAssembly SIMD here: one node:crypto pass a chunk
        }
      }
      self.postMessage({ id: m.id });
      return;
    }
    if (m.finish) {
      const digest = running.digest("hex");
      running = createHash(role === "image-md5" ? "md5" : "sha256");
      self.postMessage({ id: m.id, digest });
      return;
    }
    // offset -1: a chunk known to be zeros that was never read (only the image hashes take it).
    const views = m.chunks.map((c) => {
      if (c.offset >= 0) return new Uint8Array(memory.buffer, c.offset, c.length);
      if (zeros.length < c.length) zeros = new Uint8Array(c.length);
      return zeros.subarray(0, c.length);
    });
    if (running) for (const v of views) running.update(v);
    if (role !== "chunks") {
      self.postMessage({ id: m.id });
      return;
    }
    const hashes = m.chunks.map((c, k) =>
      c.zero ? null : { md5: "", sha256: createHash("sha256").update(views[k]).digest("hex") }
    );
    // Lanes need equal lengths: only the image's last chunk may differ.
    const byLength = new Map();
    m.chunks.forEach((c, k) => {
      if (c.zero) return;
      if (!byLength.has(c.length)) byLength.set(c.length, []);
      byLength.get(c.length).push(k);
    });
    for (const ks of byLength.values()) {
      const md5s = chunkMd5s(ks.map((k) => m.chunks[k]), ks.map((k) => views[k]));
      ks.forEach((k, j) => (hashes[k].md5 = md5s[j]));
    }
    self.postMessage({ id: m.id, hashes });
  } catch (err) {
    self.postMessage({ id: m.id, error: String(err?.message ?? err) });
  }
};
`;

interface BatchChunk {
  offset: number;
  length: number;
  zero: boolean;
}

interface Reply {
  hashes?: (Digest | null)[];
  digest?: string;
}

/** A chunk's MD5 and SHA-256, hex. */
export interface Digest {
  md5: string;
  sha256: string;
}

export interface BatchHasherOptions {
  /** The shared memory every pushed chunk lies in. */
  memory: WebAssembly.Memory;
  /** Offset of the scratch bytes in `memory` that nothing else uses (16-byte aligned): BATCH_SCRATCH
   * for a BatchImageHasher, 2 × BATCH_SCRATCH for a ChunkBatchHasher. */
  scratch: number;
  /** Chunks a batch holds before it goes to the workers by itself (1..MAX_BATCH). */
  batch: number;
  /** Also chain the whole image's MD5 (BatchImageHasher; default false: its finish() then gives
   * the SHA-256 alone). */
  imageMd5?: boolean;
  /** Chain the whole image's SHA-256 (BatchImageHasher; default true). */
  imageSha256?: boolean;
  /** Chunk MD5s in WebAssembly SIMD lanes (default true; without, or where the runtime has no
   * WebAssembly SIMD, one node:crypto pass a chunk). */
  simd?: boolean;
}

/** What a "chunks" worker needs to start: the memory, its scratch and the lane modules. */
function chunksInit(options: BatchHasherOptions, scratch: number, feed: boolean) {
  const simd = options.simd !== false;
  return {
    init: true,
    role: "chunks",
    feed,
    memory: options.memory,
    scratch,
    lanes4: simd ? md5LanesModule(true, 1) : null,
    lanes8: simd ? md5LanesModule(true, 2) : null,
  };
}

/**
 * Collects pushed chunks (views into one shared WebAssembly.Memory, each followed by
 * MD5_PAD_ROOM bytes the hasher may overwrite) into batches for the workers. Chunks wait until
 * a batch is full or flush() is called: call it before waiting for any pushed chunk's result.
 */
abstract class Batcher<T> {
  #memory: WebAssembly.Memory;
  #batch: number;
  #waiting: { chunk: BatchChunk; resolve: (t: T) => void; reject: (e: unknown) => void }[] = [];

  protected constructor(options: BatchHasherOptions, scratchBytes: number) {
    const { memory, scratch, batch } = options;
    if (!(memory.buffer instanceof SharedArrayBuffer)) {
      throw new TypeError("Cannot batch-hash chunks outside a shared WebAssembly.Memory");
    }
    if (
      !Number.isInteger(scratch) || scratch < 0 || scratch % 16 !== 0 ||
      scratch + scratchBytes > memory.buffer.byteLength
    ) {
      throw new RangeError(`Invalid scratch offset ${scratch}: not 16-byte aligned in the memory`);
    }
    if (!Number.isInteger(batch) || batch < 1 || batch > MAX_BATCH) {
      throw new RangeError(`Invalid batch size ${batch}: must be 1..${MAX_BATCH} chunks`);
    }
    this.#memory = memory;
    this.#batch = batch;
  }

  /** Chunks pushed but not yet handed to a worker (the last ones pushed). */
  get held(): number {
    return this.#waiting.length;
  }

  /** Send one batch; resolves to one result per chunk, in order. */
  protected abstract send(chunks: BatchChunk[]): Promise<T[]>;

  /** A chunk of `length` zero bytes that is in no buffer (the workers use zeros of their own). */
  protected enqueueZeros(length: number): Promise<T> {
    return this.#add({ offset: -1, length, zero: true });
  }

  protected enqueue(bytes: Uint8Array, zero: boolean): Promise<T> {
    const end = bytes.byteOffset + bytes.length + MD5_PAD_ROOM;
    if (bytes.buffer !== this.#memory.buffer || end > this.#memory.buffer.byteLength) {
      return Promise.reject(
        new RangeError("Cannot hash a chunk that is not in the hasher's memory, with pad room"),
      );
    }
    return this.#add({ offset: bytes.byteOffset, length: bytes.length, zero });
  }

  #add(chunk: BatchChunk): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ chunk, resolve, reject });
      if (this.#waiting.length >= this.#batch) this.flush();
    });
  }

  /** Hand the chunks pushed so far to the workers now. */
  flush() {
    if (this.#waiting.length === 0) return;
    const batch = this.#waiting;
    this.#waiting = [];
    this.send(batch.map((w) => w.chunk)).then(
      (results) => batch.forEach((w, k) => w.resolve(results[k])),
      (err) => batch.forEach((w) => w.reject(err)),
    );
  }

  protected rejectWaiting() {
    const err = new Error("Cannot hash: the hasher was closed");
    for (const w of this.#waiting.splice(0)) w.reject(err);
  }
}

/** Chunk k's digests in a "chunks" worker's reply. */
function digestOf(r: Reply, k: number, chunk: BatchChunk): Digest {
  const h = r.hashes?.[k];
  if (!h) throw new Error(`Cannot hash: no hashes for the chunk at ${chunk.offset}`);
  return h;
}

/** ImageHasher for slicing (see the top of this file). */
export class BatchImageHasher extends Batcher<ChunkHashes> implements ImageHasher {
  #imageMd5: WorkerRpc<Reply> | undefined;
  #imageSha256: WorkerRpc<Reply> | undefined;
  #chunks = new WorkerRpc<Reply>(WORKER_SOURCE, "hash");

  constructor(options: BatchHasherOptions) {
    super(options, BATCH_SCRATCH);
    if (options.imageMd5) this.#imageMd5 = new WorkerRpc<Reply>(WORKER_SOURCE, "hash");
    if (options.imageSha256 !== false) {
      this.#imageSha256 = new WorkerRpc<Reply>(WORKER_SOURCE, "hash");
    }
    // Each worker handles its messages in order, so pushes need not wait for these; a failed
    // init makes every later request fail too.
    const { memory, scratch } = options;
    Promise.all([
      this.#imageMd5?.request({ init: true, role: "image-md5", memory, scratch }),
      this.#imageSha256?.request({ init: true, role: "image-sha256", memory, scratch }),
      this.#chunks.request(chunksInit(options, scratch, false)),
    ]).catch(() => {});
  }

  /** `zero`: the caller has checked the bytes already (else they are checked here). */
  push(bytes: Uint8Array, zero = isAllZero(bytes)): Promise<ChunkHashes> {
    return this.enqueue(bytes, zero);
  }

  pushZeros(length: number): Promise<ChunkHashes> {
    return this.enqueueZeros(length);
  }

  protected async send(chunks: BatchChunk[]): Promise<ChunkHashes[]> {
    const [, , r] = await Promise.all([
      this.#imageMd5?.request({ chunks }),
      this.#imageSha256?.request({ chunks }),
      this.#chunks.request({ chunks }),
    ]);
    return chunks.map((c, k) =>
      c.zero ? { ...zeroChunkHashes(c.length), zero: true } : { ...digestOf(r, k, c), zero: false }
    );
  }

  async finish(): Promise<{ md5?: string; sha256?: string }> {
    this.flush();
    const [md5, sha256] = await Promise.all([
      this.#imageMd5?.request({ finish: true }),
      this.#imageSha256?.request({ finish: true }),
    ]);
    return {
      ...(md5 ? { md5: md5.digest! } : {}),
      ...(sha256 ? { sha256: sha256.digest! } : {}),
    };
  }

  close() {
    this.#imageMd5?.close();
    this.#imageSha256?.close();
    this.#chunks.close();
    this.rejectWaiting();
  }
}

/**
 * MD5 and SHA-256 of chunks, for checking them against a manifest (verify, assemble): two
 * workers take whole batches in turn, each hashing its chunks' SHA-256s and their MD5s in SIMD
 * lanes. Measured (1 GiB, 1 MiB chunks): ≈ 0.9 CPU ms a MiB against 1.95 for node:crypto.
 */
export class ChunkBatchHasher extends Batcher<Digest> {
  #workers = [0, 1].map(() => new WorkerRpc<Reply>(WORKER_SOURCE, "hash"));

  constructor(options: BatchHasherOptions) {
    super(options, 2 * BATCH_SCRATCH);
    this.#workers.forEach((w, k) =>
      w.request(chunksInit(options, options.scratch + k * BATCH_SCRATCH, false)).catch(() => {})
    );
  }

  /** A chunk's digests (zero chunks are hashed too: the caller knows which to skip). */
  digest(bytes: Uint8Array): Promise<Digest> {
    return this.enqueue(bytes, false);
  }

  protected async send(chunks: BatchChunk[]): Promise<Digest[]> {
    const w = this.#workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    const r = await w.request({ chunks });
    return chunks.map((c, k) => digestOf(r, k, c));
  }

  close() {
    for (const w of this.#workers) w.close();
    this.rejectWaiting();
  }
}

/** Default bytes of chunk buffers: enough to overlap reading, hashing and writing (three
 * batches). Measured (bench:slice, 1 GiB, 1 MiB chunks): 31 buffers 0.99 x the hash limit, 19
 * buffers 0.92, 11 buffers 0.77; peak RSS 124, 114 and 109 MiB (the runtime and its workers are
 * most of it). */
export const BUFFER_BUDGET = 32 * 1024 * 1024;

/** Buffers in flight: `budget` bytes of them, at least 3 (a chunk alone may be bigger), at
 * most 3 × MAX_BATCH per BUFFER_BUDGET. */
function bufferCount(stride: number, budget: number): number {
  const most = 3 * MAX_BATCH * Math.max(1, Math.floor(budget / BUFFER_BUDGET));
  return Math.max(3, Math.min(most, Math.floor(budget / stride)));
}

/** Chunks per batch: a third of the buffers, in whole groups of eight SIMD lanes where possible. */
function batchSize(buffers: number): number {
  const third = Math.max(1, Math.floor(buffers / 3));
  return third >= 8 ? third - (third % 8) : third;
}

/** Chunk buffers in one shared, page-aligned memory, and the batch size that suits them. */
export interface ChunkBuffers {
  memory: WebAssembly.Memory;
  /** Views of chunkSize bytes, each at a page boundary (O_DIRECT-ready) with MD5 pad room after. */
  buffers: Uint8Array[];
  /** Offset of the scratch bytes asked for, after the buffers. */
  scratch: number;
  batch: number;
}

/**
 * Buffers for a read → hash → write pipeline over chunks of `chunkSize` bytes: the hashing
 * workers read them in place (shared, and WebAssembly hashes them where they are) and files can
 * be written from them around the page cache (aligned), so no chunk byte is copied after the read.
 */
export function chunkBuffers(
  chunkSize: number,
  scratchBytes: number,
  budget = BUFFER_BUDGET,
): ChunkBuffers {
  const stride = Math.ceil((chunkSize + MD5_PAD_ROOM) / DIRECT_ALIGN) * DIRECT_ALIGN;
  const count = bufferCount(stride, budget);
  const memory = alignedMemory(stride * count + scratchBytes, { shared: true });
  return {
    memory,
    buffers: Array.from(
      { length: count },
      (_, k) => new Uint8Array(memory.buffer, k * stride, chunkSize),
    ),
    scratch: stride * count,
    // A bigger budget is for running ahead, not for bigger messages: the default's batch.
    batch: batchSize(bufferCount(stride, Math.min(budget, BUFFER_BUDGET))),
  };
}
