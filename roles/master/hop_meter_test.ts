import assert from "node:assert/strict";
import { HopMeter } from "./hop_meter.ts";

Deno.test("hop_meter: a hop's rate over the last window, judged only once a window old", () => {
  const m = new HopMeter(2);
  m.report("a", 5e6, 0); // before any hop: counted as its starting bytes, not as a rate
  m.start("a", 1);
  assert.equal(m.receiving("a"), true);
  assert.equal(m.lastSign("a"), 1);
  assert.equal(m.lastGrowth("a"), null);
  const rows: [number, number | null][] = [];
  for (let t = 1.5; t <= 5; t += 0.5) {
    m.report("a", 5e6 + (t <= 3 ? 10e6 * (t - 1) : 20e6 + 1e6 * (t - 3)), t);
    rows.push([t, m.rate("a", t)]);
  }
  assert.deepEqual(rows, [
    [1.5, null],
    [2, null],
    [2.5, null],
    [3, 10e6],
    [3.5, 7.75e6],
    [4, 5.5e6],
    [4.5, 3.25e6],
    [5, 1e6],
  ]);
  assert.equal(m.lastGrowth("a"), 5);
  // A new hop is judged from scratch; stop and forget end the measuring.
  m.start("a", 6);
  assert.equal(m.rate("a", 6), null);
  m.report("a", 27e6, 6.5);
  assert.equal(m.lastGrowth("a"), null, "no growth: the same bytes as before the hop");
  m.stop("a");
  assert.equal(m.receiving("a"), false);
  assert.equal(m.lastSign("a"), null);
});
