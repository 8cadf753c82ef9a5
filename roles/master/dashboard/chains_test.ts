import assert from "node:assert/strict";
import type { FeedPeer } from "../../protocol/mod.ts";
import { chainRuns } from "./chains.ts";

const rx = (sv: string): FeedPeer => ({ r: "c", s: "receiving", p: 250, sv });

Deno.test("chains: a relay chain of 700 PCs is one run, however deep", () => {
  const peers: Record<string, FeedPeer> = { fake: { r: "f", s: "serving", p: 1000 } };
  for (let i = 1; i <= 700; i++) peers[`pc${i}`] = rx(i === 1 ? "fake" : `pc${i - 1}`);
  const runs = chainRuns(peers);
  assert.equal(runs.length, 1);
  assert.equal(runs[0].ids.length, 701);
  assert.deepEqual([runs[0].ids[0], runs[0].ids.at(-1)], ["fake", "pc700"]);
});

Deno.test("chains: a fork starts new runs one level down; waiting and failed PCs stay out", () => {
  const runs = chainRuns({
    srv: { r: "s", s: "serving", p: 1000 },
    a: rx("srv"),
    b: rx("a"),
    c: { r: "c", s: "verifying", p: 1000, sv: "b" },
    d: rx("b"),
    e: rx("d"),
    idle: { r: "c", s: "waiting", p: 0, sv: "srv" },
    gone: { r: "c", s: "failed", p: 100, sv: "a" },
    done: { r: "c", s: "serving", p: 1000, ok: 1 },
  });
  assert.deepEqual(runs, [
    { depth: 0, ids: ["srv", "a", "b"] },
    { depth: 1, ids: ["c"] },
    { depth: 1, ids: ["d", "e"] },
  ]);
});

Deno.test("chains: old links that form a cycle still place every PC once", () => {
  const runs = chainRuns({
    x: { r: "c", s: "serving", p: 1000, ok: 1, sv: "y" },
    y: { r: "c", s: "serving", p: 1000, ok: 1, sv: "x" },
  });
  assert.deepEqual(runs, [{ depth: 0, ids: ["x", "y"] }]);
});
