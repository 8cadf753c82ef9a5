import assert from "node:assert/strict";
import { liveStatus } from "./live_status.ts";
import type { PeerRecord } from "./peer_record.ts";
import { peerStatus, runStatus } from "./status.ts";
import { SAMPLE_MANIFEST, sampleRun } from "./testkit.ts";

Deno.test("runStatus: the totals of one pass are what each state's count says", () => {
  const h = sampleRun();
  const s = runStatus(h.core, SAMPLE_MANIFEST, h.time.now);
  const clients = s.peers.filter((p) => p.role === "client" && p.state !== "booting");
  assert.deepEqual(s.totals, {
    clients: clients.length,
    booting: s.peers.filter((p) => p.state === "booting").length,
    verified: clients.filter((p) => p.verified).length,
    receiving: clients.filter((p) => p.state === "receiving").length,
    waiting: clients.filter((p) => p.state === "waiting").length,
    failed: clients.filter((p) => !p.verified && (p.state === "left" || p.state === "failed"))
      .length,
    servers: s.peers.filter((p) => p.state === "serving").length,
    bytesReceived: clients.reduce((n, p) => n + p.bytes, 0),
  });
  // The sample run has each kind: a verified PC, a booting one, receiving, waiting, a left one.
  assert.deepEqual(
    [s.totals.clients, s.totals.verified, s.totals.booting, s.totals.receiving],
    [7, 1, 1, 3],
  );
  const snap = h.core.scheduler.snapshot();
  assert.deepEqual(s.queues, { servers: snap.serverQueue, clients: snap.clientQueue });
  assert.equal(s.paused, snap.paused);
});

Deno.test("peerStatus: every field, in the order the JSON has always had; live adds served last", () => {
  const record: PeerRecord = {
    id: "pc-01",
    role: "client",
    name: "pc-01",
    mac: "52:54:00:00:01:01",
    address: "10.0.1.1",
    url: "http://10.0.1.1:9",
    capacity: 3,
    state: "receiving",
    held: 16,
    total: 64,
    bytes: 16 * 1048576,
    rate: 1048576,
    server: "fake",
    servedBy: ["fake"],
    serving: ["pc-02"],
    joinedAt: 1000,
    doneAt: 1010,
    verified: false,
    failures: [{ at: 1005, reason: "bad-chunk", detail: "Chunk 3" }],
    failureCount: 1,
    connected: true,
    disk: "/dev/sda",
    diskReason: "the only disk",
    finish: { ok: true, step: "gpt", detail: "" },
    served: 5,
  };
  const s = peerStatus(record, 1048576);
  assert.deepEqual(Object.keys(s), [
    "id",
    "role",
    "name",
    "mac",
    "address",
    "url",
    "state",
    "held",
    "total",
    "progress",
    "bytes",
    "rate",
    "eta",
    "server",
    "servedBy",
    "serving",
    "verified",
    "disk",
    "diskReason",
    "finish",
    "joinedAt",
    "doneAt",
    "seconds",
    "failures",
    "connected",
  ]);
  assert.deepEqual([s.progress, s.eta, s.seconds], [0.25, 48, 10]);
  // Without the optional parts, none of their keys.
  const bare = peerStatus({
    ...record,
    mac: undefined,
    url: undefined,
    server: undefined,
    disk: undefined,
    diskReason: undefined,
    finish: undefined,
    doneAt: undefined,
  }, 1048576);
  for (const k of ["mac", "url", "server", "disk", "diskReason", "finish", "doneAt"]) {
    assert.ok(!(k in bare), k);
  }
  assert.equal(bare.seconds, null);
  const h = sampleRun();
  const live = liveStatus(h.core, SAMPLE_MANIFEST, h.time.now);
  for (const p of live.peers) {
    assert.equal(Object.keys(p).at(-1), "served");
    assert.equal(p.served, h.core.peers.get(p.id)!.served ?? 0);
  }
});
