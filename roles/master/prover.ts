// The master's Prover over its own copy of the image (the slices): challenges name a few
// non-zero chunks at random (zero chunks are known to all), answers are checked against the
// master's bytes.
import { randomBytes, randomInt } from "node:crypto";
import type { ChunkSource } from "../data/mod.ts";
import { pickChunks, PROOF_CHUNKS, proofOf } from "../protocol/mod.ts";
import type { Prover } from "./core.ts";

export function sourceProver(source: ChunkSource): Prover {
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
      return proofOf(nonce, bytes);
    },
  };
}
