// The master's Prover over its own copy of the image (the slices): challenges name a few
// non-zero chunks at random (zero chunks are known to all), answers are checked against the
// master's bytes. Reading and hashing those bytes (3 MiB a proof) run in a worker: when a whole
// room finishes at once, 1,500 proofs on the master's one thread held every other answer
// (status, the control sessions) for seconds. The worker reads the chunk files itself (a
// stored-compressed chunk is read and decompressed here and moved to it), into one buffer it
// keeps: a fresh buffer per chunk, on either thread, is garbage freed late (the master at 1 GB).
import { randomBytes, randomInt } from "node:crypto";
import type { ChunkSource } from "../data/mod.ts";
import { pickChunks, PROOF_CHUNKS, proofOf, proofPrefix } from "../protocol/mod.ts";
import { WorkerRpc } from "../../imagetools/kit/mod.ts";
import { chunkLength } from "../../imagetools/mod.ts";
import type { Prover } from "./core.ts";

/** proofOf in a worker: each chunk a buffer (moved) or a file it reads (with its length). */
const WORKER_SOURCE = `
import { createHash } from "node:crypto";
import { setPriority } from "node:os";
// Below the master's own thread (nice 10, this thread only: Linux's setpriority takes a thread
// id): a room finishing at once is seconds of hashing, and on a short machine it took the
// cores from the thread that answers the control sessions and the dashboard. Proofs wait;
// answers do not. Where the system says no (no /proc, no sys permission), it runs as it is.
try {
  setPriority(Number(Deno.readLinkSync("/proc/thread-self").split("/").pop()), 10);
} catch { /* runs at the master's priority */ }
let buf = new Uint8Array(0);
self.onmessage = (e) => {
  const m = e.data;
  try {
    const h = createHash("sha256").update(m.prefix);
    for (const c of m.chunks) {
      if (c instanceof ArrayBuffer) {
        h.update(new Uint8Array(c));
        continue;
      }
      // Into one buffer, kept: a fresh one per chunk is garbage the heap frees late (600
      // proofs grew a process to 550 MB). One byte more than the chunk finds a longer file.
      if (buf.length < c.length + 1) buf = new Uint8Array(c.length + 1);
      const f = Deno.openSync(c.path);
      let n = 0;
      try {
        for (let r; n <= c.length && (r = f.readSync(buf.subarray(n))) !== null && r > 0;) n += r;
      } finally {
        f.close();
      }
      if (n !== c.length) {
        throw new Error("file " + c.path + " holds " + (n > c.length ? "more than " + c.length : n) + " bytes, expected " + c.length);
      }
      h.update(buf.subarray(0, n));
    }
    self.postMessage({ id: m.id, proof: h.digest("hex") });
  } catch (err) {
    self.postMessage({ id: m.id, error: String(err && err.message || err) });
  }
};
`;

/** A chunk for a proof: its bytes, or its plain file and the length it must have. */
export type ProofChunk = Uint8Array | { path: string; length: number };

/** Hashes proofs in a worker, started by warm() or at the first proof; close() stops it. */
export class ProofHasher {
  #rpc: WorkerRpc<{ proof: string }> | null = null;

  /** Start the worker now: started at the first proof, it cost the room's first PC 0.18 s
   * between its "received" and being counted (bench:lab, flat room, a quiet machine). */
  warm(): WorkerRpc<{ proof: string }> {
    return this.#rpc ??= new WorkerRpc<{ proof: string }>(WORKER_SOURCE, "hash a proof");
  }

  async proof(nonce: string, chunks: readonly ProofChunk[]): Promise<string> {
    const rpc = this.warm();
    // A buffer that is the chunk's alone moves to the worker; any other is copied first.
    const parts = chunks.map((c) =>
      !(c instanceof Uint8Array) ? c : c.byteOffset === 0 && c.byteLength === c.buffer.byteLength &&
          c.buffer instanceof ArrayBuffer
        ? c.buffer
        : c.slice().buffer
    );
    const moved = parts.filter((p) => p instanceof ArrayBuffer);
    const reply = await rpc.request({ prefix: proofPrefix(nonce), chunks: parts }, moved);
    return reply.proof;
  }

  close() {
    this.#rpc?.close();
    this.#rpc = null;
  }
}

/** `fileOf`: a chunk's plain file, which the hasher's worker reads itself (null: read here). */
export function sourceProver(
  source: ChunkSource,
  hasher?: ProofHasher,
  fileOf?: (index: number) => string | null,
): Prover & { close(): void; warm(): void } {
  const chunks = source.manifest.chunks;
  const nonZero = chunks.flatMap((c, i) => (c.zero ? [] : [i]));
  const candidates = nonZero.length > 0 ? nonZero : chunks.map((_, i) => i);
  return {
    challenge: () => ({
      nonce: randomBytes(16).toString("hex"),
      chunks: pickChunks(candidates, PROOF_CHUNKS, () => randomInt(2 ** 32) / 2 ** 32),
    }),
    async expected(nonce, picked) {
      if (!hasher) {
        const bytes: Uint8Array[] = [];
        for (const i of picked) bytes.push(await source.read(i));
        return proofOf(nonce, bytes);
      }
      const parts: ProofChunk[] = [];
      for (const i of picked) {
        const path = fileOf?.(i) ?? null;
        parts.push(
          path !== null ? { path, length: chunkLength(source.manifest, i) } : await source.read(i),
        );
      }
      return await hasher.proof(nonce, parts);
    },
    close: () => hasher?.close(),
    warm: () => hasher?.warm(),
  };
}
