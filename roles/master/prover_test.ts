import assert from "node:assert/strict";
import type { ChunkSource } from "../data/mod.ts";
import { proofOf } from "../protocol/mod.ts";
import { ProofHasher, sourceProver } from "./prover.ts";

const chunk = (i: number, n = 4096) => new Uint8Array(n).map((_, k) => (i * 31 + k) & 255);

/** A source of three chunks (the middle one zero); chunk 2 cannot be read. */
function source(): ChunkSource {
  return {
    manifest: {
      size: 4 * 4096,
      chunkSize: 4096,
      chunks: [{ zero: false }, { zero: true }, { zero: false }, { zero: false }],
    },
    read: (i: number) =>
      i === 2 ? Promise.reject(new Error("chunk 2: disk error")) : Promise.resolve(chunk(i)),
  } as unknown as ChunkSource;
}

Deno.test("ProofHasher: the worker answers what proofOf answers; a shared buffer is left intact", async () => {
  const hasher = new ProofHasher();
  try {
    const whole = new Uint8Array(10_000).map((_, k) => k & 255);
    const view = whole.subarray(100, 5100); // part of a larger buffer: copied, not moved
    const own = chunk(7);
    const expected = proofOf("n1", [chunk(7), view]);
    assert.equal(await hasher.proof("n1", [own, view]), expected);
    assert.equal(whole.byteLength, 10_000);
    assert.equal(whole[4000], 4000 & 255);
    // Many at once, each its own answer.
    const many = await Promise.all(
      Array.from({ length: 20 }, (_, i) => hasher.proof(`n${i}`, [chunk(i), chunk(i + 1)])),
    );
    assert.deepEqual(
      many,
      Array.from({ length: 20 }, (_, i) => proofOf(`n${i}`, [chunk(i), chunk(i + 1)])),
    );
  } finally {
    hasher.close();
  }
});

Deno.test("sourceProver: challenges name non-zero chunks; the expected answer comes from the worker", async () => {
  const hasher = new ProofHasher();
  const prover = sourceProver(source(), hasher);
  try {
    for (let k = 0; k < 20; k++) {
      const ch = prover.challenge();
      assert.equal(ch.nonce.length, 32);
      assert.equal(ch.chunks.length, 3);
      assert.deepEqual([...ch.chunks].sort(), [0, 2, 3]);
    }
    assert.equal(await prover.expected("abc", [0, 3]), proofOf("abc", [chunk(0), chunk(3)]));
    await assert.rejects(Promise.resolve(prover.expected("abc", [0, 2])), /chunk 2: disk error/);
    // Closed (the master shuts down): a proof still in flight is refused, never hangs.
    const late = hasher.proof("late", [chunk(0)]);
    prover.close();
    await assert.rejects(late, /closed/);
  } finally {
    prover.close();
  }
});

Deno.test("sourceProver: the worker reads a chunk's plain file itself; one of another length is refused", async () => {
  const dir = await Deno.makeTempDir();
  const hasher = new ProofHasher();
  try {
    await Deno.writeFile(`${dir}/0`, chunk(0));
    await Deno.writeFile(`${dir}/3`, chunk(3).subarray(0, 100));
    // Chunk 0 from its file (in the worker), chunk 2's read fails here, chunk 3's file is short.
    const files = (i: number) => (i === 0 || i === 3 ? `${dir}/${i}` : null);
    const prover = sourceProver(source(), hasher, files);
    assert.equal(await prover.expected("f", [0]), proofOf("f", [chunk(0)]));
    await assert.rejects(
      Promise.resolve(prover.expected("f", [0, 3])),
      new RegExp(`file ${dir}/3 holds 100 bytes, expected 4096`),
    );
    await Deno.writeFile(`${dir}/3`, new Uint8Array(5000));
    await assert.rejects(
      Promise.resolve(prover.expected("f", [3])),
      new RegExp(`file ${dir}/3 holds more than 4096 bytes, expected 4096`),
    );
    await Deno.writeFile(`${dir}/3`, chunk(3));
    // Mixed: a file the worker reads and bytes read here, in the challenge's order.
    const mixed = sourceProver(source(), hasher, (i) => (i === 0 ? `${dir}/0` : null));
    assert.equal(await mixed.expected("m", [3, 0]), proofOf("m", [chunk(3), chunk(0)]));
    // The worker's kept buffer holds a longer chunk's bytes from before: only this one counts.
    assert.equal(await prover.expected("g", [3, 0]), proofOf("g", [chunk(3), chunk(0)]));
  } finally {
    hasher.close();
    await Deno.remove(dir, { recursive: true });
  }
});
