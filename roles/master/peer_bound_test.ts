import assert from "node:assert/strict";
import { bootingPeer, type PeerRecord } from "./peer_record.ts";
import { Departed, FULL_LOG_SECONDS, FullRefusals, keepRecord, MAX_PEERS } from "./peer_bound.ts";
import { coreHarness, helloMessage } from "./testkit.ts";
import type { WelcomeMessage } from "../protocol/mod.ts";

const client = (id: string, extra: Partial<PeerRecord> = {}): PeerRecord => ({
  ...bootingPeer(id, "10.0.0.1", 8, 0),
  name: id,
  mac: undefined,
  state: "left",
  ...extra,
});

Deno.test("peer bound: a client is kept only for what this run did with it", () => {
  assert.equal(keepRecord(client("stranger")), false);
  // What a hello says does not count (held chunks, a disk), nor failures before an assignment.
  const claims = client("claims", {
    held: 8,
    failures: [{ at: 1, reason: "other", detail: "x" }],
    failureCount: 1,
    disk: "/dev/sda",
  });
  assert.equal(keepRecord(claims), false);
  const kept: Partial<PeerRecord>[] = [
    { verified: true },
    { macBound: true },
    { assignedAt: 0, bytes: 1 },
    { assignedAt: 3, failures: [{ at: 4, reason: "bad-chunk", detail: "" }] },
    { served: 1 },
    { doneAt: 5 },
    { finish: { ok: false, step: "gpt", detail: "" } },
    { state: "failed" }, // its own disk failed: the admin must see it
  ];
  for (const k of kept) assert.equal(keepRecord(client("pc", k)), true, JSON.stringify(k));
  assert.equal(keepRecord(client("pc", { served: 0, macBound: false })), false);
  // Assigned, and gone before a byte came: a free server takes any client that says hello.
  assert.equal(keepRecord(client("pc", { assignedAt: 0, servedBy: ["fake"] })), false);
  assert.equal(keepRecord(client("srv", { role: "server" })), true, "servers: the token guards");
  assert.equal(MAX_PEERS, 4096);
});

Deno.test("peer bound: the departed list keeps the newest, and gives a record back once", () => {
  const d = new Departed(3);
  for (const id of ["a", "b", "c"]) d.put(client(id));
  d.put(client("a")); // dropped again: the newest now
  d.put(client("d"));
  assert.equal(d.size, 3);
  assert.equal(d.get("b"), undefined, "the least recently dropped went first");
  assert.equal(d.take("a", "10.0.0.2", undefined), undefined, "another address: not its record");
  assert.equal(d.take("a", "10.0.0.1", "52:54:00:00:00:01"), undefined, "another MAC neither");
  assert.equal(d.take("a", "10.0.0.1", undefined)?.id, "a");
  assert.equal(d.take("a", "10.0.0.1", undefined), undefined, "taken once");
  assert.deepEqual([d.size, d.get("c")?.id, d.get("d")?.id], [2, "c", "d"]);
  assert.throws(() => new Departed(-1), RangeError);
});

Deno.test("peer bound: hellos refused for a full table are all counted, logged once a minute", () => {
  const f = new FullRefusals();
  const logged = [0, 1, 2, FULL_LOG_SECONDS - 1, FULL_LOG_SECONDS, FULL_LOG_SECONDS + 1]
    .map((t) => f.refused(t));
  assert.deepEqual(logged, [1, null, null, null, 4, null]);
  assert.equal(f.total, 6);
});

Deno.test("peer bound: a stranger's records go when its sessions close; a PC's stay", () => {
  const h = coreHarness({ linger: 0, totalChunks: 8, imageBytes: 8 * 1024 });
  const atLeave: (string | undefined)[] = [];
  h.core.subscribe((e) => {
    if (e.event === "leave") atLeave.push(h.core.peers.get(String(e.fields.peer))?.id);
  });
  for (let i = 0; i < 500; i++) {
    h.open(`s${i}`, "10.0.0.66");
    h.hello(`s${i}`, "client");
    h.drop(`s${i}`);
  }
  assert.equal(h.core.peers.size, 0, "no record left by 500 sessions under new names");
  assert.equal(atLeave.length, 500);
  assert.ok(atLeave.every((id) => id !== undefined), "the record was there at its leave event");
  // Assigned and gone at once: dropped too. An honest PC that got bytes keeps its record.
  h.open("fake", "10.0.0.9");
  h.hello("fake", "fake");
  h.open("quick", "10.0.0.66");
  h.hello("quick", "client");
  assert.equal(h.core.peers.get("quick")!.state, "receiving");
  h.drop("quick");
  assert.equal(h.core.peers.has("quick"), false);
  h.open("pc1", "10.0.0.1");
  h.hello("pc1", "client");
  assert.equal(h.core.peers.get("pc1")!.state, "receiving");
  h.say("pc1", { type: "progress", held: 2, bytes: 2048, rate: 1024 });
  h.drop("pc1");
  assert.equal(h.core.peers.get("pc1")?.state, "left");
  assert.deepEqual([...h.core.peers.keys()].sort(), ["fake", "pc1"]);
});

Deno.test("peer bound: a dropped record resumes on a quick reconnect, and its name stays its own", () => {
  const h = coreHarness({ totalChunks: 8, imageBytes: 8 * 1024 });
  h.open("pc2", "10.0.0.2");
  h.hello("pc2", "client", { disk: "/dev/sda" });
  const joinedAt = h.core.peers.get("pc2")!.joinedAt;
  h.say("pc2", { type: "failed", server: "fake", reason: "timeout", detail: "no server yet" });
  h.drop("pc2");
  assert.equal(h.core.peers.has("pc2"), false, "never assigned: dropped");
  h.advance(5);
  // Another host under that name gets an id of its own, as if the record were still there.
  h.open("evil", "10.0.0.66");
  h.say("evil", helloMessage("pc2", "client"));
  assert.equal((h.to("evil")[0] as WelcomeMessage).id, "pc2-2");
  h.drop("evil");
  h.open("pc2b", "10.0.0.2");
  h.say("pc2b", helloMessage("pc2", "client"));
  assert.equal((h.to("pc2b")[0] as WelcomeMessage).id, "pc2");
  const back = h.core.peers.get("pc2")!;
  assert.deepEqual(
    [back.joinedAt, back.failures.map((f) => f.reason), back.failureCount, back.disk],
    [joinedAt, ["timeout"], 1, "/dev/sda"],
  );
});

Deno.test("peer bound: a full table refuses a new record with the limit named, not a PC's own", () => {
  const h = coreHarness({ maxPeers: 3, totalChunks: 8, imageBytes: 8 * 1024 });
  for (const n of ["a", "b"]) {
    h.open(n, `10.0.0.${n.charCodeAt(0)}`);
    h.hello(n, "client");
  }
  h.core.booting("52:54:00:00:00:50", "10.0.0.50");
  for (let i = 0; i < 5; i++) {
    h.open(`x${i}`, "10.0.0.66");
    h.hello(`x${i}`, "client");
  }
  const refusal = "This master holds 3 peer records already (maxPeers 3): try again later";
  assert.deepEqual(h.to("x4"), [{ type: "error", message: refusal }]);
  assert.ok(h.closed.includes("x0") && h.closed.includes("x4"));
  assert.deepEqual(
    h.core.events.filter((e) => e.event === "peers-full").map((e) => e.fields),
    [{ max: 3, refused: 1 }],
    "logged once, not per attempt",
  );
  assert.equal(h.core.fullRefusals.total, 5);
  // The PC that booted takes the place of its placeholder: it adds no record.
  h.open("pc50", "10.0.0.50");
  h.hello("pc50", "client");
  assert.equal(h.to("pc50")[0].type, "welcome");
  assert.deepEqual([...h.core.peers.keys()].sort(), ["a", "b", "pc50"]);
  // Once a record goes, a new one fits again.
  h.drop("a");
  h.open("x5", "10.0.0.66");
  h.hello("x5", "client");
  assert.equal(h.to("x5")[0].type, "welcome");
});
