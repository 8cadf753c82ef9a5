import assert from "node:assert/strict";
import { DEFAULT_CONTROL_LIMITS, MessageBudget } from "./control_limits.ts";

Deno.test("MessageBudget: a burst, then the rate; an honest PC's reports never run out", () => {
  let now = 0;
  const b = new MessageBudget({ helloMs: 10_000, ratePerSecond: 20, burst: 60 }, () => now);
  for (let i = 0; i < 60; i++) assert.ok(b.take(), `message ${i} of the burst`);
  assert.equal(b.take(), false, "the 61st at once is over");
  now += 100; // 0.1 s: two more
  assert.ok(b.take());
  assert.ok(b.take());
  assert.equal(b.take(), false);
  assert.equal(b.refusal(), "Too many messages: at most 20 a second (bursts of 60)");
  // A PC: a progress report every 500 ms and a few messages per assignment, for an hour.
  const pc = new MessageBudget(DEFAULT_CONTROL_LIMITS, () => now);
  for (let t = 0; t < 3600 * 2; t++) {
    now += 500;
    assert.ok(pc.take(), "progress");
    if (t % 100 === 0) { for (let k = 0; k < 5; k++) assert.ok(pc.take(), "assignment messages"); }
  }
});
