import assert from "node:assert/strict";
import type { Manifest } from "../../imagetools/mod.ts";
import { bufferSlots, planRuns, planWork } from "./fetch_plan.ts";

/** A manifest whose chunks are zero where `pattern` has "0" (hashes do not matter here). */
function manifestOf(pattern: string): Manifest {
  return {
    format: 1,
    name: "plan.img",
    size: pattern.length * 4096,
    chunkSize: 4096,
    md5: "",
    sha256: "",
    chunks: [...pattern].map((c) => ({ md5: "", sha256: "", zero: c === "0" })),
  } as unknown as Manifest;
}

Deno.test("planRuns joins missing chunks with only zero chunks between them", () => {
  //                   0123456789
  const m = manifestOf("x0xx00x0xx");
  assert.deepEqual(planRuns(m, [0, 2, 3, 6, 8, 9]), [[0, 2, 3, 6, 8, 9]]);
  // A held non-zero chunk (3, 8) between two missing ones splits them.
  assert.deepEqual(planRuns(m, [0, 2, 6, 9]), [[0, 2], [6], [9]]);
  assert.deepEqual(planRuns(m, [0, 2, 6, 8]), [[0, 2], [6, 8]]);
  assert.deepEqual(planRuns(m, [9]), [[9]]);
  assert.deepEqual(planRuns(m, []), []);
});

Deno.test("bufferSlots: twice the requests in flight within 512 MiB, never fewer than inflight + 1", () => {
  assert.equal(bufferSlots(4, 1 << 20), 8);
  assert.equal(bufferSlots(1, 1 << 20), 2);
  assert.equal(bufferSlots(4, 128 << 20), 5); // 4 x 128 MiB fit, 8 would not
  assert.equal(bufferSlots(4, 1 << 30), 5);
});

Deno.test("planWork: older versions by delta, the rest as runs, one request each without streams", () => {
  //                   0123456789
  const m = manifestOf("x0xx00x0xx");
  const older = (i: number) => i === 3 || i === 8;
  assert.deepEqual(planWork(m, [0, 2, 3, 6, 8, 9], { older, delta: true, streams: true }), [
    { kind: "delta", index: 3 },
    { kind: "delta", index: 8 },
    { kind: "run", chunks: [0, 2] },
    { kind: "run", chunks: [6] },
    { kind: "run", chunks: [9] },
  ]);
  assert.deepEqual(planWork(m, [2, 3], { older, delta: false, streams: true }), [
    { kind: "run", chunks: [2, 3] },
  ]);
  assert.deepEqual(planWork(m, [2, 3], { older, delta: true, streams: false }), [
    { kind: "delta", index: 3 },
    { kind: "chunk", index: 2 },
  ]);
});
