// The master's Prover over its own copy of the image (the slices): challenges name a few
// non-zero chunks at random (zero chunks are known to all), answers are checked against the
// master's bytes. The SHA-256 over those bytes (3 MiB a proof) runs in a worker: when a whole
// room finishes at once, 1,500 proofs hashed on the master's one thread held every other answer
// (status, the control sessions) for seconds.
import { randomBytes, randomInt } from "node:crypto";
import type { ChunkSource } from "../data/mod.ts";
import { pickChunks, PROOF_CHUNKS, proofOf, proofPrefix } from "../protocol/mod.ts";
import { WorkerRpc } from "../../imagetools/kit/mod.ts";
import type { Prover } from "./core.ts";

/** proofOf in a worker (it gets the chunks' buffers, moved): the same answer, off this thread. */
const WORKER_SOURCE = `
import { createHash } from "node:crypto";
self.onmessage = (e) => {
  const m = e.data;
  try {
    const h = createHash("sha256").update(m.prefix);
    for (const c of m.chunks) h.update(new Uint8Array(c));
    self.postMessage({ id: m.id, proof: h.digest("hex") });
  } catch (err) {
    self.postMessage({ id: m.id, error: String(err && err.message || err) });
  }
};
`;

/** Hashes proofs in a worker, started at the first proof; close() stops it. */
export class ProofHasher {
  #rpc: WorkerRpc<{ proof: string }> | null = null;

  async proof(nonce: string, chunks: readonly Uint8Array[]): Promise<string> {
    this.#rpc ??= new WorkerRpc<{ proof: string }>(WORKER_SOURCE, "hash a proof");
    // A buffer that is the chunk's alone moves to the worker; any other is copied first.
    const buffers = chunks.map((c) =>
      c.byteOffset === 0 && c.byteLength === c.buffer.byteLength && c.buffer instanceof ArrayBuffer
        ? c.buffer
        : c.slice().buffer
    );
    const reply = await this.#rpc.request({ prefix: proofPrefix(nonce), chunks: buffers }, buffers);
    return reply.proof;
  }

  close() {
    this.#rpc?.close();
    this.#rpc = null;
  }
}

export function sourceProver(
  source: ChunkSource,
  hasher?: ProofHasher,
): Prover & { close(): void } {
  const chunks = source.manifest.chunks;
  const nonZero = chunks.flatMap((c, i) => (c.zero ? [] : [i]));
  const candidates = nonZero.length > 0 ? nonZero : chunks.map((_, i) => i);
  return {
    challenge: () => ({
      nonce: randomBytes(16).toString("hex"),
      chunks: pickChunks(candidates, PROOF_CHUNKS, () => randomInt(2 ** 32) / 2 ** 32),
    }),
    async expected(nonce, picked) {
      const bytes: Uint8Array[] = [];
      for (const i of picked) bytes.push(await source.read(i));
      return hasher ? await hasher.proof(nonce, bytes) : proofOf(nonce, bytes);
    },
    close: () => hasher?.close(),
  };
}
