import assert from "node:assert/strict";
import { pickChunks, proofOf } from "./proof.ts";

Deno.test("proofOf depends on the nonce and on every byte of every chunk, in order", () => {
  const a = new Uint8Array([1, 2, 3]);
  const b = new Uint8Array([4, 5]);
  const p = proofOf("n1", [a, b]);
  assert.match(p, /^[0-9a-f]{64}$/);
  assert.notEqual(proofOf("n2", [a, b]), p);
  assert.notEqual(proofOf("n1", [b, a]), p);
  assert.notEqual(proofOf("n1", [a, new Uint8Array([4, 6])]), p);
  assert.equal(proofOf("n1", [new Uint8Array(a), new Uint8Array(b)]), p);
});

Deno.test("pickChunks picks distinct candidates, at most count", () => {
  let x = 0;
  const rnd = () => (x = (x + 0.37) % 1);
  const got = pickChunks([2, 4, 6, 8, 10], 3, rnd);
  assert.equal(got.length, 3);
  assert.equal(new Set(got).size, 3);
  assert.ok(got.every((i) => [2, 4, 6, 8, 10].includes(i)));
  assert.deepEqual(pickChunks([7], 3, rnd), [7]);
  assert.deepEqual(pickChunks([], 3, rnd), []);
});
