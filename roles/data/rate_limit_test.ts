import assert from "node:assert/strict";
import { Pacer } from "./rate_limit.ts";

Deno.test("Pacer books reads back to back at the given rate", () => {
  const p = new Pacer(1000);
  assert.equal(p.book(500, 0), 0.5);
  assert.equal(p.book(500, 0), 1.0, "the second read waits for the first");
  assert.equal(p.book(1000, 5), 1, "an idle pacer starts from now");
  assert.throws(() => new Pacer(0), /Invalid rate limit 0/);
});
