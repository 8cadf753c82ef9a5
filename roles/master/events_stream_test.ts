// The feed routes through app.request, and the hub's promises: one tick for all viewers, a
// viewer behind by more than the hub keeps gets a snapshot, a reconnect gets only what it missed.
import assert from "node:assert/strict";
import { applyFeedDelta, type FeedDelta, type FeedSnapshot } from "../protocol/mod.ts";
import { createMasterApp } from "./app.ts";
import { FeedHub } from "./events_stream.ts";
import { liveStatus } from "./live_status.ts";
import { coreHarness, playSample, SAMPLE_MANIFEST, sseReader } from "./testkit.ts";

const MiB = 1024 * 1024;

function setup(maxViewers?: number) {
  const h = coreHarness({ expect: 8 });
  const app = createMasterApp({
    core: h.core,
    manifest: SAMPLE_MANIFEST,
    manifestBytes: new TextEncoder().encode('{"format":1}'),
    log: () => {},
    now: () => h.time.now,
    sse: { minGap: 5, period: 40, maxViewers },
  });
  playSample(h);
  return { h, app };
}

Deno.test("the event streams take so many viewers, then answer 503 until one leaves", async () => {
  const { app } = setup(2);
  const a = await app.request("/api/v1/feed/events");
  const b = await app.request("/api/v1/events");
  for (const path of ["/api/v1/feed/events", "/api/v1/events"]) {
    const res = await app.request(path);
    assert.equal(res.status, 503, path);
    assert.equal(res.headers.get("retry-after"), "10");
    assert.deepEqual(await res.json(), {
      error: "The master has 2 viewers at once, its most: try again later",
    });
  }
  await a.body?.cancel();
  let again = 503;
  for (let i = 0; i < 50 && again === 503; i++) {
    await new Promise((r) => setTimeout(r, 10));
    const res = await app.request("/api/v1/feed/events");
    again = res.status;
    await res.body?.cancel();
  }
  assert.equal(again, 200);
  await b.body?.cancel();
});

Deno.test("GET /api/v1/feed: the compact snapshot as JSON", async () => {
  const { app } = setup();
  const res = await app.request("/api/v1/feed");
  assert.equal(res.status, 200);
  const snap = await res.json() as FeedSnapshot;
  assert.equal(snap.seq, 0, "nobody watches: a snapshot outside the sequence");
  assert.equal(Object.keys(snap.peers).length, 9);
  assert.equal(snap.run.totals.verified, 1);
  assert.deepEqual(snap.peers["pc-06"], { r: "c", s: "waiting", p: 0, a: "10.0.1.6" });
});

Deno.test("GET /api/v1/feed: a PC on a known switch is grouped by it", async () => {
  const { app, h } = setup();
  h.core.peers.get("pc-03")!.switch = "sw-2";
  const snap = await (await app.request("/api/v1/feed")).json() as FeedSnapshot;
  assert.equal(snap.peers["pc-03"].g, "sw-2");
  assert.equal(snap.peers["pc-04"].g, undefined);
});

Deno.test("GET /api/v1/feed/events: a snapshot, deltas that rebuild the run, then the end", async () => {
  const { app, h } = setup();
  const ev = sseReader(await app.request("/api/v1/feed/events"));
  const first = await ev.next();
  assert.equal(first?.event, "snapshot");
  let view = JSON.parse(first!.data) as FeedSnapshot;
  assert.match(first!.id!, new RegExp(`\\.${view.seq}$`));
  h.say("pc-05", { type: "progress", held: 20, bytes: 20 * MiB, rate: 2.5 * MiB });
  h.hello("pc-08", "client");
  while (!view.peers["pc-08"]) {
    const e = await ev.next();
    assert.equal(e?.event, "delta");
    view = applyFeedDelta(view, JSON.parse(e!.data) as FeedDelta)!;
    assert.ok(view, "every delta follows the one before");
  }
  h.core.end("stopped for the test");
  for (;;) {
    const e = await ev.next();
    assert.ok(e, "the stream sends the end before it closes");
    if (e.event === "end") break;
    view = applyFeedDelta(view, JSON.parse(e.data) as FeedDelta)!;
  }
  assert.equal(await ev.next(), null, "and then it closes");
  // What the viewer built from deltas is what the master holds now.
  const fresh = await (await app.request("/api/v1/feed")).json() as FeedSnapshot;
  assert.deepEqual({ ...view, seq: 0 }, { ...fresh, seq: 0 });
  assert.equal(view.peers["pc-05"].p, 312);
  assert.equal(view.run.ended, "stopped for the test");
});

Deno.test("GET /api/v1/feed/events: a reconnect with Last-Event-ID gets only the deltas since", async () => {
  const { app, h } = setup();
  const a = sseReader(await app.request("/api/v1/feed/events"));
  const snap = await a.next();
  h.say("pc-05", { type: "progress", held: 20, bytes: 20 * MiB, rate: 2.5 * MiB });
  const d1 = await a.next();
  assert.equal(d1?.event, "delta");
  // A second viewer that saw the snapshot comes back: deltas only, the same bytes the first got.
  const b = sseReader(
    await app.request("/api/v1/feed/events", { headers: { "last-event-id": snap!.id! } }),
  );
  const again = await b.next();
  assert.deepEqual(again, d1);
  // An id from another master (or one too old) gets a snapshot.
  const c = sseReader(
    await app.request("/api/v1/feed/events", { headers: { "last-event-id": "zzzz.1" } }),
  );
  assert.equal((await c.next())?.event, "snapshot");
  h.core.end("done");
  for (const r of [a, b, c]) while (await r.next());
});

Deno.test("FeedHub: one tick for all viewers; a viewer too far behind gets a snapshot", () => {
  const h = coreHarness();
  playSample(h);
  let calls = 0;
  const hub = new FeedHub({
    status: () => (calls++, liveStatus(h.core, SAMPLE_MANIFEST, h.time.now)),
    subscribe: () => () => {},
    pace: { minGap: 1e6, period: 1e6 },
    keep: 3,
  });
  const leaves = Array.from({ length: 20 }, () => hub.join());
  assert.equal(calls, 1, "twenty viewers, one status computed");
  const start = hub.seq;
  for (let i = 0; i < 5; i++) {
    h.advance(1);
    h.say("pc-04", { type: "progress", held: 31 + i, bytes: (31 + i) * MiB, rate: 4 * MiB });
    hub.tick();
  }
  assert.equal(calls, 6);
  // 3 behind: the 3 deltas kept; 5 behind: more than kept, so a snapshot; 0 (new): a snapshot.
  const kinds = (seq: number) =>
    hub.framesAfter(seq).map((f) => new TextDecoder().decode(f.bytes).split("\n")[0]);
  assert.deepEqual(kinds(hub.seq - 3), ["event: delta", "event: delta", "event: delta"]);
  assert.deepEqual(kinds(start), ["event: snapshot"]);
  assert.deepEqual(kinds(0), ["event: snapshot"]);
  assert.deepEqual(kinds(hub.seq), []);
  // The same encoded bytes for everyone: no per-viewer copy of a frame.
  assert.equal(hub.framesAfter(start)[0], hub.framesAfter(start)[0]);
  for (const leave of leaves) leave();
  assert.equal(hub.seq, 0, "nobody watches: the hub forgets and computes nothing");
});
