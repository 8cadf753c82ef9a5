import assert from "node:assert/strict";
import { Hono } from "hono";
import { PROBE_BYTES, probeRoutes } from "./probe_route.ts";
import { PROBE_PATH, PROBE_TURN_HEADER } from "../protocol/mod.ts";
import { probeMaster } from "../peers/mod.ts";

const later = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(tailMs = 60_000, turnMs = 60_000) {
  const app = new Hono();
  probeRoutes(app, { tailMs, turnMs });
  return app;
}

/** The second probe's response, set once its headers come. */
function second(app: Hono) {
  const box: { res: Response | null; done: Promise<Response> } = { res: null, done: null! };
  box.done = Promise.resolve(app.request(PROBE_PATH)).then((r) => (box.res = r));
  return box;
}

Deno.test("probe: 1 MiB, and the next PC's turn waits until this one says it has the blob", async () => {
  const app = setup();
  const first = await app.request(PROBE_PATH);
  assert.equal(first.status, 200);
  assert.equal(first.headers.get("content-type"), "application/octet-stream");
  const token = first.headers.get(PROBE_TURN_HEADER)!;
  assert.match(token, /^[0-9a-f-]{36}$/);
  const next = second(app);
  assert.equal((await first.arrayBuffer()).byteLength, PROBE_BYTES);
  // All written and read: still this PC's turn (its bytes may still be on the master's port).
  await later(50);
  assert.equal(next.res, null);
  // A token that is not the turn's changes nothing.
  const wrong = await app.request(`${PROBE_PATH}?turn=nope`, { method: "POST" });
  assert.equal(wrong.status, 409);
  assert.deepEqual(await wrong.json(), { error: 'No probe turn "nope" is being served' });
  await later(20);
  assert.equal(next.res, null);
  const done = await app.request(`${PROBE_PATH}?turn=${token}`, { method: "POST" });
  assert.equal(done.status, 204);
  const res = await next.done;
  assert.notEqual(res.headers.get(PROBE_TURN_HEADER), token);
  assert.equal((await res.arrayBuffer()).byteLength, PROBE_BYTES);
  // The ended turn's token is stale now.
  assert.equal((await app.request(`${PROBE_PATH}?turn=${token}`, { method: "POST" })).status, 409);
  await app.request(`${PROBE_PATH}?turn=${res.headers.get(PROBE_TURN_HEADER)}`, { method: "POST" });
});

Deno.test("probe: a PC that never says done (an older client) frees its turn tailMs after the last write", async () => {
  const app = setup(100);
  const first = await app.request(PROBE_PATH);
  const next = second(app);
  await first.arrayBuffer();
  assert.equal(next.res, null);
  const res = await next.done; // within the 100 ms tail, not the minute's turn
  assert.equal((await res.arrayBuffer()).byteLength, PROBE_BYTES);
});

Deno.test("probe: a PC that goes away mid-blob frees its turn at once", async () => {
  const app = setup();
  const first = await app.request(PROBE_PATH);
  const next = second(app);
  await first.body!.cancel();
  const res = await next.done;
  assert.equal((await res.arrayBuffer()).byteLength, PROBE_BYTES);
  await app.request(`${PROBE_PATH}?turn=${res.headers.get(PROBE_TURN_HEADER)}`, { method: "POST" });
});

Deno.test("probe: the PC's probeMaster over HTTP ends its own turn, so the next starts at once", async () => {
  const app = setup(); // a minute's tail: only the PC's "done" can free the turn in time
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  try {
    const url = `http://127.0.0.1:${server.addr.port}/`;
    const logs: string[] = [];
    const rate = await probeMaster(url, (event) => logs.push(event));
    assert.ok(rate !== undefined && rate > 0);
    assert.deepEqual(logs, ["probe"]);
    const timeout = later(5_000).then(() => "still queued");
    const next = fetch(new URL(PROBE_PATH, url)).then(async (r) => {
      const bytes = (await r.arrayBuffer()).byteLength;
      await probeEnd(url, r);
      return bytes;
    });
    assert.equal(await Promise.race([next, timeout]), PROBE_BYTES);
  } finally {
    await server.shutdown();
  }
});

async function probeEnd(url: string, r: Response) {
  const token = r.headers.get(PROBE_TURN_HEADER);
  await (await fetch(new URL(`${PROBE_PATH}?turn=${token}`, url), { method: "POST" })).body
    ?.cancel();
}
