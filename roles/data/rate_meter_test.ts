import assert from "node:assert/strict";
import { RateMeter } from "./rate_meter.ts";

Deno.test("RateMeter: bytes per second over the last window, by a hand-driven clock", () => {
  let now = 0;
  const m = new RateMeter(() => now, 3000);
  assert.equal(m.rate(), 0);
  m.sample(0);
  assert.equal(m.rate(), 0); // one sample: no rate yet
  now = 1000;
  m.sample(1_000_000);
  assert.equal(m.rate(), 1_000_000);
  now = 2000;
  m.sample(3_000_000);
  assert.equal(m.rate(), 1_500_000);
  // Later samples push the oldest out, keeping one older than the window.
  for (let t = 3000; t <= 10_000; t += 1000) {
    now = t;
    m.sample(3_000_000 + (t - 2000) * 500);
  }
  assert.equal(m.rate(), 500_000);
  // Nothing arrived for longer than the window: the rate is 0, not the last one.
  now = 13_001;
  assert.equal(m.rate(), 0);
});

Deno.test("RateMeter: samples at one instant give no rate", () => {
  const m = new RateMeter(() => 5, 3000);
  m.sample(0);
  m.sample(100);
  assert.equal(m.rate(), 0);
});
