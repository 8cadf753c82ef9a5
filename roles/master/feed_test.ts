import assert from "node:assert/strict";
import { applyFeedDelta, type FeedDelta, type FeedSnapshot } from "../protocol/mod.ts";
import { feedDiff, feedPeer, feedSnapshot, roughRate } from "./feed.ts";
import { liveStatus } from "./live_status.ts";
import { coreHarness, playSample, SAMPLE_MANIFEST, sampleRun } from "./testkit.ts";

const MiB = 1024 * 1024;
const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v));

Deno.test("feed: the delta stream replayed onto the first snapshot equals a fresh snapshot", () => {
  const h = coreHarness({ expect: 8 });
  const snaps: FeedSnapshot[] = [];
  const take = () =>
    snaps.push(feedSnapshot(liveStatus(h.core, SAMPLE_MANIFEST, h.time.now), snaps.length + 1));
  take();
  // A snapshot after every event of the sample run (joins, assigns, a failure, a leave, …).
  const off = h.core.subscribe(take);
  playSample(h);
  // Then progress (no events), a reconnect, a booting PC replaced by its hello, the end.
  for (const held of [52, 60, 64]) {
    h.advance(1);
    h.say("pc-03", { type: "progress", held, bytes: held * MiB, rate: (5 + held / 100) * MiB });
    take();
  }
  h.say("pc-03", { type: "received" });
  h.drop("pc-06");
  h.open("pc-06b", "10.0.1.6");
  h.hello("pc-06b", "client", { name: "pc-06" });
  h.open("pc-09", "10.0.1.9");
  h.hello("pc-09", "client", { mac: "52:54:00:00:01:09" });
  // A stranger says hello and goes, never assigned: its record is dropped after its leave.
  h.open("stranger", "10.0.9.9");
  h.hello("stranger", "client");
  h.drop("stranger");
  assert.equal(h.core.peers.has("stranger"), false);
  h.core.end("done for the test");
  off();
  take();
  assert.ok(snaps.length > 30, `${snaps.length} snapshots`);

  // The wire: every delta as JSON, applied in order to the first snapshot as JSON.
  const wire = snaps.slice(1).map((s, i) => JSON.stringify(feedDiff(snaps[i], s)));
  let view: FeedSnapshot | null = copy(snaps[0]);
  for (const d of wire) view = applyFeedDelta(view!, JSON.parse(d) as FeedDelta);
  assert.deepEqual(view, copy(snaps.at(-1)));
  // Something left and something changed on the way, so the test proves deletions and nulls.
  const all = wire.map((d) => JSON.parse(d) as FeedDelta);
  assert.ok(all.some((d) => d.del?.includes("52:54:00:00:01:09")), "the booting PC went away");
  assert.ok(all.some((d) => d.set?.stranger), "the stranger came");
  assert.ok(all.some((d) => d.del?.includes("stranger")), "and its record went");
  assert.ok(all.some((d) => Object.values(d.set ?? {}).some((c) => c.v === null)), "a rate went");
  // A fresh snapshot of the same moment agrees too (nothing in it depends on the history).
  assert.deepEqual(
    view,
    copy(feedSnapshot(liveStatus(h.core, SAMPLE_MANIFEST, h.time.now), snaps.length)),
  );
});

Deno.test("feed: a delta that does not follow the snapshot is refused (the viewer resyncs)", () => {
  const h = sampleRun();
  const a = feedSnapshot(liveStatus(h.core, SAMPLE_MANIFEST, h.time.now), 7);
  h.advance(1);
  const b = feedSnapshot(liveStatus(h.core, SAMPLE_MANIFEST, h.time.now), 8);
  const c = feedSnapshot(liveStatus(h.core, SAMPLE_MANIFEST, h.time.now), 9);
  assert.equal(applyFeedDelta(copy(a), feedDiff(b, c)), null);
  assert.equal(applyFeedDelta(copy(a), feedDiff(a, b))?.seq, 8);
});

Deno.test("feed: a delta carries only what changed; an unchanged tick is a few bytes", () => {
  const h = sampleRun();
  const snap = (seq: number) => feedSnapshot(liveStatus(h.core, SAMPLE_MANIFEST, h.time.now), seq);
  const a = snap(1);
  assert.equal(JSON.stringify(feedDiff(a, snap(2))), '{"seq":2,"t":42}');
  h.advance(1);
  h.say("pc-04", { type: "progress", held: 36, bytes: 36 * MiB, rate: 4.01 * MiB });
  const d = feedDiff(a, snap(2));
  // The run part changed (bytes received), pc-04 moved on; its rate, rounded, did not.
  assert.deepEqual(d.set, { "pc-04": { p: 562 } });
  assert.equal(d.run?.totals.bytesReceived, a.run.totals.bytesReceived + 6 * MiB);
});

Deno.test("feed: one PC in short keys; rates to two significant digits", () => {
  const s = liveStatus(sampleRun().core, SAMPLE_MANIFEST, 1042);
  const byId = new Map(s.peers.map((p) => [p.id, feedPeer(p)]));
  assert.deepEqual(byId.get("pc-03"), {
    r: "c",
    s: "receiving",
    p: 750,
    a: "10.0.1.3",
    v: 5800000,
    sv: "pc-01",
  });
  assert.deepEqual(byId.get("pc-07"), {
    r: "c",
    s: "failed",
    p: 0,
    a: "10.0.1.7",
    sv: "fake-server",
    f: 1,
    why: "Left the run unimaged; after bad-chunk: Chunk 12 failed its SHA-256 check from " +
      '"fake-server" (server fake-server)',
  });
  assert.deepEqual(byId.get("pc-01"), {
    r: "c",
    s: "serving",
    p: 1000,
    m: "52:54:00:00:01:01",
    a: "10.0.1.1",
    sv: "fake-server",
    sn: 3,
    ok: 1,
    t: 12,
  });
  assert.deepEqual([roughRate(0), roughRate(1234), roughRate(5.5 * MiB), roughRate(-1)], [
    0,
    1200,
    5800000,
    0,
  ]);
});

Deno.test("feed: a PC's group (by MAC) and the PCs that booted without being enrolled", () => {
  const s = liveStatus(sampleRun().core, SAMPLE_MANIFEST, 1042);
  s.unenrolled = [{
    mac: "52:54:00:aa:00:01",
    address: "10.0.9.1",
    firstAt: 1,
    lastAt: 2,
    boots: 2,
  }];
  const snap = feedSnapshot(s, 1, (p) => (p.mac === "52:54:00:00:01:01" ? "room-101" : undefined));
  assert.equal(snap.peers["pc-01"].g, "room-101");
  assert.equal(snap.peers["pc-02"].g, undefined);
  assert.deepEqual(snap.run.unenrolled, { count: 1, first: ["52:54:00:aa:00:01 (10.0.9.1)"] });
});
