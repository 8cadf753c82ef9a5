// Chunk hashing: MD5 + SHA-256 (+ the all-zero flag) of one chunk, on this thread or on worker
// threads. node:crypto is native; the workers buy parallelism, not faster hashing.
//
// Buffers: a view over a SharedArrayBuffer is handed to a worker without a copy;
// any other view is copied on the way (a memcpy of 1 MiB costs ~0.1 ms, noise beside MD5's
// ~1.5 ms). Either way the caller must not change the bytes until the promise settles.
import { createHash } from "node:crypto";
import { WorkerRpc } from "../kit/mod.ts";

export type HashAlgo = "md5" | "sha256";
export const HASH_ALGOS: readonly HashAlgo[] = ["md5", "sha256"];

/** The hashes a manifest keeps per chunk. */
export interface ChunkHashes {
  md5: string;
  sha256: string;
  /** Every byte is zero (its hashes are then those of zeroChunkHashes(length)). */
  zero: boolean;
}

/** Digests of the algorithms asked for; the others are absent. */
export type Digests = Partial<Record<HashAlgo, string>>;

/** True when every byte is zero. ORs sixteen 32-bit words a step where alignment allows
 * (~2.5 GB/s; the 64-bit BigInt form it replaces allocated as it went and ran ~0.9 GB/s cold). */
export function isAllZero(bytes: Uint8Array): boolean {
  let i = 0;
  const n = bytes.length;
  const head = Math.min(n, (4 - (bytes.byteOffset % 4)) % 4);
  for (; i < head; i++) if (bytes[i] !== 0) return false;
  const words = (n - i) >> 2;
  if (words > 0) {
    const w = new Int32Array(bytes.buffer, bytes.byteOffset + i, words);
    let k = 0;
    for (; k + 16 <= words; k += 16) {
      const any = w[k] | w[k + 1] | w[k + 2] | w[k + 3] | w[k + 4] | w[k + 5] | w[k + 6] |
        w[k + 7] | w[k + 8] | w[k + 9] | w[k + 10] | w[k + 11] | w[k + 12] | w[k + 13] |
        w[k + 14] | w[k + 15];
      if (any !== 0) return false;
    }
    for (; k < words; k++) if (w[k] !== 0) return false;
    i += words * 4;
  }
  for (; i < n; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Hex digests of `bytes` for the given algorithms, on this thread. */
export function digest(bytes: Uint8Array, algos: readonly HashAlgo[] = HASH_ALGOS): Digests {
  const out: Digests = {};
  for (const a of algos) out[a] = createHash(a).update(bytes).digest("hex");
  return out;
}

/** MD5, SHA-256 and the zero flag of one chunk, on this thread (zero chunks cost no hashing). */
export function hashChunk(bytes: Uint8Array): ChunkHashes {
  if (isAllZero(bytes)) return { ...zeroChunkHashes(bytes.length), zero: true };
  const d = digest(bytes);
  return { md5: d.md5!, sha256: d.sha256!, zero: false };
}

/**
 * What to post to a worker: a shared view as it is; otherwise a copy of just these bytes
 * (posting a view clones its whole ArrayBuffer, which may be far larger than the view).
 */
function shareable(bytes: Uint8Array): Uint8Array {
  if (bytes.buffer instanceof SharedArrayBuffer) return bytes;
  return bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

// ---- worker threads ------------------------------------------------------------------------

interface WorkRequest {
  id: number;
  bytes?: Uint8Array;
  /** Digest these over `bytes` alone. */
  chunk?: HashAlgo[];
  /** Also feed `bytes` to this worker's running (whole-stream) hashes of these algorithms. */
  feed?: HashAlgo[];
  /** Return and reset the running hashes. */
  finish?: boolean;
}

const WORKER_SOURCE = `
import { createHash } from "node:crypto";
let running = new Map();
self.onmessage = (e) => {
  const m = e.data;
  try {
    const digests = {};
    if (m.bytes) {
      for (const a of m.feed ?? []) {
        if (!running.has(a)) running.set(a, createHash(a));
        running.get(a).update(m.bytes);
      }
      for (const a of m.chunk ?? []) digests[a] = createHash(a).update(m.bytes).digest("hex");
    }
    if (m.finish) {
      for (const [a, h] of running) digests[a] = h.digest("hex");
      running = new Map();
    }
    self.postMessage({ id: m.id, digests });
  } catch (err) {
    self.postMessage({ id: m.id, error: String(err?.message ?? err) });
  }
};
`;

/** One hashing thread. */
class HashWorker {
  #rpc = new WorkerRpc<{ digests?: Digests }>(WORKER_SOURCE, "hash");

  get inFlight(): number {
    return this.#rpc.inFlight;
  }

  async request(req: Omit<WorkRequest, "id">): Promise<Digests> {
    return (await this.#rpc.request(req)).digests ?? {};
  }

  close() {
    this.#rpc.close();
  }
}

/**
 * Hashes a whole image chunk by chunk, as slicing needs it: every chunk's MD5 and SHA-256 plus
 * the whole image's MD5 and SHA-256 (so every byte is hashed twice by each algorithm).
 */
export interface ImageHasher {
  /** Feed the next chunk (chunks must come in image order); resolves to its hashes. The bytes
   * must stay as they are until then. `zero`: the caller checked them already (a hint). */
  push(bytes: Uint8Array, zero?: boolean): Promise<ChunkHashes>;
  /** Feed the next chunk, known to be `length` zero bytes without being read (a chunk wholly in
   * free blocks): only the whole-image hashes take it in. */
  pushZeros(length: number): Promise<ChunkHashes>;
  /** Start on everything pushed so far: a hasher may hold chunks back to hash several at once,
   * so call this before waiting for a pushed chunk's hashes. */
  flush(): void;
  /** The whole image's hashes (of everything pushed so far; each where the hasher chains
   * one); the hasher then starts over. */
  finish(): Promise<{ md5?: string; sha256?: string }>;
  close(): void;
}

/**
 * "batch": two threads, chunk MD5s eight at a time in SIMD lanes (batch_hasher.ts; the fast way,
 * for chunks in a shared WebAssembly.Memory); "split": two threads, node:crypto only (the
 * previous way, kept for the benchmark's comparison); "inline": all on this thread (the baseline).
 */
export type ImageHasherMode = "batch" | "split" | "inline";

// WHY two workers split this way: one runs the whole-image MD5 and each chunk's SHA-256, the
// other the whole-image SHA-256 and each chunk's MD5, so each does MD5 + SHA-256 per byte (equal
// work), both cores stay busy and the main thread keeps only the I/O (figures: BENCHMARKS.md).
export class SplitImageHasher implements ImageHasher {
  #a = new HashWorker(); // whole-image MD5 + chunk SHA-256
  #b = new HashWorker(); // whole-image SHA-256 + chunk MD5

  async push(bytes: Uint8Array): Promise<ChunkHashes> {
    const zero = isAllZero(bytes);
    const shared = shareable(bytes);
    const [a, b] = await Promise.all([
      this.#a.request({ bytes: shared, feed: ["md5"], chunk: zero ? [] : ["sha256"] }),
      this.#b.request({ bytes: shared, feed: ["sha256"], chunk: zero ? [] : ["md5"] }),
    ]);
    if (zero) return { ...zeroChunkHashes(bytes.length), zero: true };
    return { md5: b.md5!, sha256: a.sha256!, zero: false };
  }

  pushZeros(length: number): Promise<ChunkHashes> {
    return this.push(new Uint8Array(length));
  }

  flush() {}

  async finish(): Promise<{ md5: string; sha256: string }> {
    const [a, b] = await Promise.all([
      this.#a.request({ finish: true }),
      this.#b.request({ finish: true }),
    ]);
    const empty = digest(new Uint8Array(0));
    return { md5: a.md5 ?? empty.md5!, sha256: b.sha256 ?? empty.sha256! };
  }

  close() {
    this.#a.close();
    this.#b.close();
  }
}

export class InlineImageHasher implements ImageHasher {
  #md5 = createHash("md5");
  #sha256 = createHash("sha256");

  push(bytes: Uint8Array): Promise<ChunkHashes> {
    this.#md5.update(bytes);
    this.#sha256.update(bytes);
    return Promise.resolve(hashChunk(bytes));
  }

  pushZeros(length: number): Promise<ChunkHashes> {
    return this.push(new Uint8Array(length));
  }

  flush() {}

  finish(): Promise<{ md5: string; sha256: string }> {
    const out = { md5: this.#md5.digest("hex"), sha256: this.#sha256.digest("hex") };
    this.#md5 = createHash("md5");
    this.#sha256 = createHash("sha256");
    return Promise.resolve(out);
  }

  close() {}
}

const zeroHashCache = new Map<number, { md5: string; sha256: string }>();

/** The hashes of `length` zero bytes (cached: there are at most two lengths per image). */
export function zeroChunkHashes(length: number): { md5: string; sha256: string } {
  let hit = zeroHashCache.get(length);
  if (!hit) {
    const zeros = new Uint8Array(length);
    hit = {
      md5: createHash("md5").update(zeros).digest("hex"),
      sha256: createHash("sha256").update(zeros).digest("hex"),
    };
    zeroHashCache.set(length, hit);
  }
  return hit;
}
