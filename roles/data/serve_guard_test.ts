import assert from "node:assert/strict";
import { guardedServe } from "./serve_guard.ts";

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
