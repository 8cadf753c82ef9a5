// Proof of holding the image: the master names a nonce and a few chunks it picks; the peer
// answers the SHA-256 of the nonce and those chunks' bytes as it holds them. The manifest's
// hashes are public, so only a peer that holds the bytes can answer; the nonce makes every
// answer new. Pure (node:crypto only).
import { createHash } from "node:crypto";

/** How many chunks a challenge names (fewer when the image has fewer non-zero chunks). */
export const PROOF_CHUNKS = 3;

/** What an answer hashes before the chunks: "cascade-proof\0", the nonce, "\0". */
export const proofPrefix = (nonce: string): string => `cascade-proof\0${nonce}\0`;

/** The answer to a challenge: SHA-256 over proofPrefix(nonce), then the chunks. */
export function proofOf(nonce: string, chunks: readonly Uint8Array[]): string {
  const h = createHash("sha256").update(proofPrefix(nonce));
  for (const c of chunks) h.update(c);
  return h.digest("hex");
}

/** `count` distinct chunk indexes from `candidates`, picked with `random` (0 <= x < 1). */
export function pickChunks(
  candidates: readonly number[],
  count: number,
  random: () => number,
): number[] {
  const pool = [...candidates];
  const out: number[] = [];
  while (out.length < count && pool.length > 0) {
    const i = Math.floor(random() * pool.length);
    out.push(pool[i]);
    pool[i] = pool[pool.length - 1];
    pool.pop();
  }
  return out;
}
