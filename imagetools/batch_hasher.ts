// Slicing's hasher: each chunk's MD5 and SHA-256 and the whole image's, on two worker threads,
// for chunks that lie in one shared WebAssembly.Memory, handed over in batches.
//
// WHY this split: the whole-image MD5 is one chain over every byte (≈ 1.46 ms a MiB with
// node:crypto, and nothing can share it out), so it gets a thread of its own. The other thread
// does the whole-image SHA-256 and each chunk's SHA-256 (≈ 0.5 ms a MiB each, SHA-NI) and each
// chunk's MD5, eight chunks at once in WebAssembly SIMD lanes (md5_multi.ts, ≈ 0.4 ms a MiB):
// ≈ 1.4 ms, so the two threads carry about the same load, and the four hashes of every byte cost
// ≈ 2.9 CPU ms a MiB instead of the ≈ 3.9 that four node:crypto passes cost.
//
// Batches, because eight lanes want eight chunks at once, and one message per batch instead of
// two per chunk. The worker writes each chunk's MD5 padding into the MD5_PAD_ROOM bytes that
// must follow the chunk in the memory (never into the chunk itself), so it hashes in place.
import { isAllZero } from "./hashing.ts";
import type { ChunkHashes, ImageHasher } from "./hashing.ts";
import { zeroChunkHashes } from "./manifest.ts";
import { md5LanesModule } from "./md5_multi.ts";
import { WorkerRpc } from "./worker_rpc.ts";

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
let role, memory, scratch, running, lanes4, lanes8;

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
      running = createHash(role === "image-md5" ? "md5" : "sha256");
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
    const views = m.chunks.map((c) => new Uint8Array(memory.buffer, c.offset, c.length));
    for (const v of views) running.update(v);
    if (role === "image-md5") {
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
  hashes?: ({ md5: string; sha256: string } | null)[];
  digest?: string;
}

interface Waiting {
  chunk: BatchChunk;
  resolve: (h: ChunkHashes) => void;
  reject: (e: unknown) => void;
}

export interface BatchImageHasherOptions {
  /** The shared memory every pushed chunk lies in. */
  memory: WebAssembly.Memory;
  /** Offset of BATCH_SCRATCH bytes in `memory` that nothing else uses (16-byte aligned). */
  scratch: number;
  /** Chunks a batch holds before it goes to the workers by itself (1..MAX_BATCH). */
  batch: number;
  /** Chunk MD5s in WebAssembly SIMD lanes (default true; without, or where the runtime has no
   * WebAssembly SIMD, one node:crypto pass a chunk). */
  simd?: boolean;
}

/**
 * ImageHasher for chunks in a shared WebAssembly.Memory, each followed by MD5_PAD_ROOM bytes
 * the hasher may overwrite. Chunks wait until a batch is full or flush() is called: call it
 * before waiting for any pushed chunk's hashes.
 */
export class BatchImageHasher implements ImageHasher {
  #memory: WebAssembly.Memory;
  #batch: number;
  #imageMd5 = new WorkerRpc<Reply>(WORKER_SOURCE, "hash");
  #chunks = new WorkerRpc<Reply>(WORKER_SOURCE, "hash");
  #waiting: Waiting[] = [];

  constructor(options: BatchImageHasherOptions) {
    const { memory, scratch, batch } = options;
    if (!(memory.buffer instanceof SharedArrayBuffer)) {
      throw new TypeError("Cannot batch-hash chunks outside a shared WebAssembly.Memory");
    }
    if (
      !Number.isInteger(scratch) || scratch < 0 || scratch % 16 !== 0 ||
      scratch + BATCH_SCRATCH > memory.buffer.byteLength
    ) {
      throw new RangeError(`Invalid scratch offset ${scratch}: not 16-byte aligned in the memory`);
    }
    if (!Number.isInteger(batch) || batch < 1 || batch > MAX_BATCH) {
      throw new RangeError(`Invalid batch size ${batch}: must be 1..${MAX_BATCH} chunks`);
    }
    this.#memory = memory;
    this.#batch = batch;
    // Each worker handles its messages in order, so pushes need not wait for these; a failed
    // init makes every later request fail too.
    Promise.all([
      this.#imageMd5.request({ init: true, role: "image-md5", memory, scratch }),
      this.#chunks.request({
        init: true,
        role: "chunks",
        memory,
        scratch,
        lanes4: options.simd === false ? null : md5LanesModule(true, 1),
        lanes8: options.simd === false ? null : md5LanesModule(true, 2),
      }),
    ]).catch(() => {});
  }

  push(bytes: Uint8Array): Promise<ChunkHashes> {
    const end = bytes.byteOffset + bytes.length + MD5_PAD_ROOM;
    if (bytes.buffer !== this.#memory.buffer || end > this.#memory.buffer.byteLength) {
      return Promise.reject(
        new RangeError("Cannot hash a chunk that is not in the hasher's memory, with pad room"),
      );
    }
    const chunk = { offset: bytes.byteOffset, length: bytes.length, zero: isAllZero(bytes) };
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
    const chunks = batch.map((w) => w.chunk);
    Promise.all([this.#imageMd5.request({ chunks }), this.#chunks.request({ chunks })]).then(
      ([, r]) =>
        batch.forEach(({ chunk, resolve }, k) => {
          const h = r.hashes?.[k];
          if (chunk.zero) resolve({ ...zeroChunkHashes(chunk.length), zero: true });
          else if (h) resolve({ md5: h.md5, sha256: h.sha256, zero: false });
          else throw new Error(`Cannot hash: no hashes for chunk at ${chunk.offset}`);
        }),
      (err) => batch.forEach((w) => w.reject(err)),
    ).catch((err) => batch.forEach((w) => w.reject(err)));
  }

  async finish(): Promise<{ md5: string; sha256: string }> {
    this.flush();
    const [md5, sha256] = await Promise.all([
      this.#imageMd5.request({ finish: true }),
      this.#chunks.request({ finish: true }),
    ]);
    return { md5: md5.digest!, sha256: sha256.digest! };
  }

  close() {
    this.#imageMd5.close();
    this.#chunks.close();
    const err = new Error("Cannot hash: the hasher was closed");
    for (const w of this.#waiting.splice(0)) w.reject(err);
  }
}
