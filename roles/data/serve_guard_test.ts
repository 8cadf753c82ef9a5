import assert from "node:assert/strict";
import { defaultLimits, guardedServe, RequestCounter } from "./serve_guard.ts";

Deno.test("RequestCounter: per address and in total, each slot released once", () => {
  const c = new RequestCounter({ perAddress: 2, total: 3 });
  const a1 = c.take("10.0.0.1")!;
  const a2 = c.take("10.0.0.1")!;
  assert.equal(c.take("10.0.0.1"), null);
  assert.equal(
    c.refusal("10.0.0.1"),
    "Too many requests at once from 10.0.0.1 (at most 2): try again later",
  );
  const b1 = c.take("10.0.0.2")!;
  assert.equal(c.take("10.0.0.3"), null);
  assert.equal(c.refusal("10.0.0.3"), "Too many requests at once (at most 3): try again later");
  a1();
  a1();
  assert.equal(c.total, 2);
  assert.ok(c.take("10.0.0.3"));
  a2();
  b1();
});

Deno.test("defaultLimits stays below the descriptor limit and names a bad cap", () => {
  const d = defaultLimits();
  assert.ok(d.total >= 8 && d.total <= 4096);
  assert.ok(d.perAddress <= d.total);
  assert.deepEqual(defaultLimits({ perAddress: 3, total: 10 }), { perAddress: 3, total: 10 });
  assert.throws(
    () => defaultLimits({ perAddress: 0 }),
    /Invalid connection cap perAddress "0": must be a whole number >= 1/,
  );
});

Deno.test("guardedServe answers 503 past the per-address cap, and serves again once freed", async () => {
  const gates: (() => void)[] = [];
  const server = guardedServe({
    hostname: "127.0.0.1",
    port: 0,
    limits: { perAddress: 2, total: 10 },
    handler: () =>
      new Response(
        new ReadableStream({
          start: (ctl) => {
            ctl.enqueue(new Uint8Array(1));
            gates.push(() => ctl.close());
          },
        }),
      ),
  });
  const url = `http://127.0.0.1:${server.addr.port}/`;
  try {
    const open = [await fetch(url), await fetch(url)];
    const refused = await fetch(url);
    assert.equal(refused.status, 503);
    assert.deepEqual(await refused.json(), {
      error: "Too many requests at once from 127.0.0.1 (at most 2): try again later",
    });
    for (const g of gates) g();
    for (const r of open) await r.body?.cancel();
    // The slots come back when the responses are done.
    let again = 503;
    for (let i = 0; i < 50 && again === 503; i++) {
      const r = await fetch(url);
      again = r.status;
      if (again === 200) {
        gates.at(-1)!();
      }
      await r.body?.cancel();
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(again, 200);
  } finally {
    for (const g of gates) {
      try {
        g();
      } catch { /* closed already */ }
    }
    await server.shutdown();
  }
});
