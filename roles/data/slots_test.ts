import assert from "node:assert/strict";
import { defaultLimits, SlotCounter, totalFor } from "./slots.ts";

Deno.test("SlotCounter: per address and in total, weighted, each slot released once", () => {
  const c = new SlotCounter({ perAddress: 8, total: 12 });
  const a = c.take("10.0.0.1", 8)!;
  assert.equal(c.held("10.0.0.1"), 8);
  assert.equal(c.take("10.0.0.1"), null);
  a.shrink(3);
  assert.equal(c.held("10.0.0.1"), 5);
  const a2 = c.take("10.0.0.1", 3)!;
  assert.equal(
    c.refusal("10.0.0.1"),
    "Too many requests at once from 10.0.0.1 (at most 8): try again later",
  );
  // The last quarter (past 9 of 12) is kept for addresses holding at most half their cap (4).
  const b = c.take("10.0.0.2", 3)!;
  assert.equal(c.check("10.0.0.2", 2), "total");
  assert.equal(c.check("10.0.0.3", 1), null);
  const d = c.take("10.0.0.3", 1)!;
  assert.equal(c.take("10.0.0.4", 1), null);
  assert.equal(c.refusal("10.0.0.4"), "Too many requests at once (at most 12): try again later");
  assert.deepEqual(c.refused, { address: 1, total: 1 });
  a.release();
  a.release();
  a.shrink(1);
  assert.equal(c.held("10.0.0.1"), 3);
  a2.release();
  assert.equal(c.total, 4);
  assert.equal(c.held("10.0.0.1"), 0);
  b.release();
  d.release();
  assert.equal(c.total, 0);
});

Deno.test("defaultLimits: the descriptor limit less a reserve, and a bad cap named", () => {
  assert.equal(totalFor(256), 192);
  assert.equal(totalFor(4096), 3840);
  assert.equal(totalFor(1 << 20), 16384);
  assert.equal(totalFor(40), 8);
  const d = defaultLimits();
  assert.ok(d.total >= 8 && d.total <= 16384);
  assert.ok(d.perAddress <= d.total);
  assert.deepEqual(defaultLimits({ perAddress: 3, total: 10 }), { perAddress: 3, total: 10 });
  assert.throws(
    () => defaultLimits({ perAddress: 0 }),
    /Invalid connection cap perAddress "0": must be a whole number >= 1/,
  );
});
