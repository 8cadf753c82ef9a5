import assert from "node:assert/strict";
import type { MasterConfig } from "./core.ts";
import { coreHarness, helloMessage, IMAGE_ID } from "./testkit.ts";
import {
  type AssignMessage,
  type HelloMessage,
  parsePeerMessage,
  ProtocolError,
  ticketValid,
  type WelcomeMessage,
} from "../protocol/mod.ts";

const IMAGE = IMAGE_ID;

/** A core on a hand-driven clock: a small image (8 chunks of 1 KiB), linger 10 s. */
function harness(config: Partial<MasterConfig> = {}) {
  return coreHarness({ linger: 10, totalChunks: 8, imageBytes: 8 * 1024, ...config });
}

const hello = helloMessage;

Deno.test("master pairs a full batch FIFO and tells server and clients", () => {
  const h = harness();
  h.open("fake", "10.0.0.9");
  h.say("fake", hello("fake", "fake"));
  for (const n of ["pc1", "pc2", "pc3"]) {
    h.open(n, `10.0.0.${n.slice(2)}`);
    h.say(n, hello(n, "client"));
  }
  const fakeKey = (h.to("fake")[0] as { ticketKey: string }).ticketKey;
  const [welcome, assign] = h.to("pc1") as [WelcomeMessage, AssignMessage];
  assert.deepEqual(welcome, {
    type: "welcome",
    id: "pc1",
    mode: "classic",
    imageId: IMAGE,
    address: "10.0.0.1",
    ticketKey: welcome.ticketKey,
    progressMs: 500,
  });
  assert.match(welcome.ticketKey, /^[0-9a-f]{64}$/);
  assert.notEqual(welcome.ticketKey, fakeKey, "every peer gets its own key");
  assert.deepEqual(assign, {
    type: "assign",
    server: { id: "fake", url: "http://10.0.0.9:9000" },
    ticket: assign.ticket,
  });
  // The ticket is good at the fake server, from pc1's address only.
  assert.equal(ticketValid(fakeKey, assign.ticket, "10.0.0.1"), true);
  assert.equal(ticketValid(fakeKey, assign.ticket, "10.0.0.2"), false);
  assert.equal(ticketValid(welcome.ticketKey, assign.ticket, "10.0.0.1"), false);
  assert.deepEqual(h.to("fake").at(-1), { type: "serve", clients: ["pc1", "pc2"] });
  assert.equal(h.to("pc3").length, 1, "pc3 only welcomed: waits for the next server");
  assert.equal(h.core.peers.get("pc3")!.state, "waiting");
});

Deno.test("classic: a verified client becomes a server and takes the waiting client", () => {
  const h = harness({ linger: 1000 });
  h.open("fake", "10.0.0.9");
  h.say("fake", hello("fake", "fake", { capacity: 1 }));
  h.open("pc1");
  h.say("pc1", hello("pc1", "client", { capacity: 1 }));
  h.open("pc2", "10.0.0.2");
  h.say("pc2", hello("pc2", "client"));
  h.say("pc1", { type: "received" });
  assert.equal(h.core.peers.get("pc1")!.state, "verifying");
  // The fake server's slot freed on "received", so pc2 goes to it.
  assert.deepEqual((h.to("pc2").at(-1) as AssignMessage).server, {
    id: "fake",
    url: "http://10.0.0.9:9000",
  });
  h.say("pc1", { type: "verified", ok: true, bad: [], seconds: 0.1 });
  assert.equal(h.core.peers.get("pc1")!.state, "verifying", "not before it proves it");
  h.prove("pc1");
  assert.equal(h.core.peers.get("pc1")!.state, "serving");
  assert.deepEqual(h.core.scheduler.snapshot().serverQueue.map((s) => s.id), ["pc1"]);
});

Deno.test("a failed client is re-queued at the head; a stale failure is only recorded", () => {
  const h = harness({ linger: 0 });
  h.open("fake", "10.0.0.9");
  h.say("fake", hello("fake", "fake", { capacity: 1 }));
  h.open("pc1");
  h.say("pc1", hello("pc1", "client"));
  h.say("pc1", { type: "failed", server: "fake", reason: "bad-chunk", detail: "chunk 3" });
  const pc1 = h.core.peers.get("pc1")!;
  assert.equal(pc1.failures.length, 1);
  // The fake server's batch is done; it is pc1's only server, so pc1 has it again once its
  // backoff (2 s) is over, not at once.
  assert.equal(pc1.state, "waiting");
  h.advance(2);
  h.core.tick();
  assert.equal(pc1.state, "receiving");
  assert.deepEqual(pc1.servedBy, ["fake", "fake"]);
  h.say("pc1", { type: "failed", server: "elsewhere", reason: "timeout", detail: "old" });
  assert.equal(pc1.state, "receiving", "a failure naming another server is stale");
  assert.equal(pc1.failures.length, 2);
});

Deno.test("server token and image id are checked at hello; clients need no token", () => {
  const h = harness({ token: "admin", serverToken: "s3cret" });
  h.open("bad");
  h.say("bad", hello("bad", "server"));
  assert.deepEqual(h.to("bad")[0], {
    type: "error",
    message: "This master needs the server token (--server-token)",
  });
  assert.deepEqual(h.closed, ["bad"]);
  h.open("admin");
  h.say("admin", hello("admin", "fake", { token: "admin" }));
  assert.deepEqual(h.to("admin")[0], { type: "error", message: "Wrong server token" });
  h.open("pc");
  h.say("pc", hello("pc", "client"));
  assert.equal(h.to("pc")[0].type, "welcome");
  h.open("other");
  h.say("other", hello("other", "server", { token: "s3cret", imageId: "b".repeat(64) }));
  assert.match((h.to("other")[0] as { message: string }).message, /holds image "bbbbbbbbbbbb"/);
  h.open("good");
  h.say("good", hello("good", "server", { token: "s3cret" }));
  assert.equal(h.to("good")[0].type, "welcome");
});

Deno.test("unexpected messages close only that session", () => {
  const h = harness();
  h.open("pc1");
  h.say("pc1", { type: "received" });
  assert.match((h.to("pc1")[0] as { message: string }).message, /before "hello"/);
  h.open("pc2");
  h.say("pc2", hello("pc2", "client"));
  h.say("pc2", { type: "verified", ok: true, bad: [], seconds: 1 });
  assert.match((h.to("pc2").at(-1) as { message: string }).message, /Unexpected "verified"/);
  assert.deepEqual(h.closed, ["pc1", "pc2"]);
});

Deno.test("--expect ends the run once N clients verified, and everyone is told", () => {
  const h = harness({ expect: 1, linger: 0 });
  h.open("fake", "10.0.0.9");
  h.say("fake", hello("fake", "fake"));
  h.open("pc1");
  h.say("pc1", hello("pc1", "client"));
  h.advance(5);
  h.say("pc1", { type: "received" });
  h.say("pc1", { type: "verified", ok: true, bad: [], seconds: 1 });
  h.prove("pc1");
  assert.equal(h.ended(), "all 1 expected PCs verified");
  assert.deepEqual(h.to("fake").at(-1), { type: "end", reason: "all 1 expected PCs verified" });
  assert.deepEqual(h.to("pc1").at(-1), { type: "end", reason: "all 1 expected PCs verified" });
});

Deno.test("a server that leaves sends its clients back to the queue", () => {
  const h = harness({ linger: 0 });
  h.open("srv");
  h.say("srv", hello("srv", "server", { capacity: 1 }));
  h.open("pc1");
  h.say("pc1", hello("pc1", "client"));
  assert.equal(h.core.peers.get("pc1")!.state, "receiving");
  h.drop("srv");
  assert.equal(h.core.peers.get("pc1")!.state, "waiting");
  assert.deepEqual(h.core.scheduler.snapshot().clientQueue.map((c) => c.id), ["pc1"]);
});

Deno.test("parsePeerMessage rejects junk with one clear error", () => {
  const cases: [string, RegExp][] = [
    ["{not json", /not JSON/],
    ["[1,2]", /not a JSON object/],
    ['{"type":"dance"}', /Unknown message type "dance"/],
    ['{"type":"progress","held":-1,"bytes":0,"rate":0}', /field "held" \(-1\)/],
    ['{"type":"progress","held":1,"bytes":0,"rate":0,"x":1}', /unknown field "x"/],
    ['{"type":"failed","server":"s","reason":"r"}', /field "detail" \(missing\)/],
    [JSON.stringify({ type: "hello", version: 9 }), /Unsupported protocol version 9/],
    ["x".repeat(20000), /larger than 16384 bytes/],
  ];
  for (const [raw, re] of cases) {
    assert.throws(() => parsePeerMessage(raw), (e: unknown) => {
      assert.ok(e instanceof ProtocolError, `${raw.slice(0, 30)}: ${e}`);
      assert.match((e as Error).message, re);
      return true;
    });
  }
  const ok = parsePeerMessage(
    JSON.stringify(hello("pc-1", "client", { mac: "52-54-00-AA-BB-CC" })),
  );
  assert.equal((ok as HelloMessage).mac, "52:54:00:aa:bb:cc");
});

Deno.test("trust: verified only after a right proof; ids and MACs stay with their PC", () => {
  const h = harness({ linger: 0 });
  h.open("fake", "10.0.0.9");
  h.say("fake", hello("fake", "fake"));
  h.core.booting("52:54:00:00:00:01", "10.0.0.1");
  h.open("pc1", "10.0.0.1");
  h.say("pc1", hello("pc1", "client", { mac: "52:54:00:00:00:01" }));
  assert.equal(h.core.peers.get("pc1")!.mac, "52:54:00:00:00:01", "bound to its boot");
  h.say("pc1", { type: "received" });
  h.say("pc1", { type: "verified", ok: true, bad: [], seconds: 1 });
  h.say("pc1", { type: "proof", sha256: "0".repeat(64) });
  assert.equal(h.core.peers.get("pc1")!.verified, false);
  assert.match((h.to("pc1").at(-1) as { message: string }).message, /Wrong proof/);
  h.drop("pc1");
  // Another host names pc1 and its MAC: refused the MAC, and it gets its own id.
  h.open("evil", "10.0.0.66");
  h.say("evil", hello("pc1", "client", { mac: "52:54:00:00:00:01" }));
  assert.match((h.to("evil")[0] as { message: string }).message, /booted from another address/);
  h.open("evil2", "10.0.0.66");
  h.say("evil2", hello("pc1", "client", { complete: true, held: 8 }));
  assert.equal((h.to("evil2")[0] as WelcomeMessage).id, "pc1-2");
  assert.equal(h.to("evil2")[1].type, "challenge");
  h.prove("evil2");
  const evil = h.core.peers.get("pc1-2")!;
  assert.equal(evil.state, "serving", "it holds the image: it may serve");
  assert.equal(evil.verified, false, "but this run did not image it: it does not count");
  // The real PC comes back from its own address: its record, and the proof this time.
  h.open("pc1b", "10.0.0.1");
  h.say("pc1b", hello("pc1", "client", { held: 8, complete: true }));
  assert.equal((h.to("pc1b")[0] as WelcomeMessage).id, "pc1");
  assert.equal(h.core.peers.get("pc1")!.mac, "52:54:00:00:00:01");
});

Deno.test("a client requeued while its fetch finished is taken as received, and counts", () => {
  const h = harness({ linger: 0 });
  h.open("srv", "10.0.0.9");
  h.say("srv", hello("srv", "server", { capacity: 1 }));
  h.open("pc1", "10.0.0.1");
  h.say("pc1", hello("pc1", "client"));
  h.open("pc2", "10.0.0.2");
  h.say("pc2", hello("pc2", "client"));
  h.drop("srv");
  assert.equal(h.core.peers.get("pc1")!.state, "waiting");
  // A client this run never assigned still may not say "received".
  h.say("pc2", { type: "received" });
  assert.match((h.to("pc2").at(-1) as { message: string }).message, /Unexpected "received"/);
  // Its last bytes came before the server went: "received" is not refused.
  h.say("pc1", { type: "received" });
  assert.equal(h.core.peers.get("pc1")!.state, "verifying");
  assert.ok(
    !h.core.scheduler.snapshot().clientQueue.some((c) => c.id === "pc1"),
    "out of the queue",
  );
  h.say("pc1", { type: "verified", ok: true, bad: [], seconds: 1 });
  h.prove("pc1");
  assert.equal(h.core.peers.get("pc1")!.verified, true);
});

Deno.test("a PC assigned in this run that lost its session before its proof counts after it", () => {
  const h = harness({ linger: 0 });
  h.open("fake", "10.0.0.9");
  h.say("fake", hello("fake", "fake"));
  h.open("pc1", "10.0.0.1");
  h.say("pc1", hello("pc1", "client"));
  assert.equal(h.core.peers.get("pc1")!.state, "receiving");
  h.drop("pc1");
  h.open("pc1b", "10.0.0.1");
  h.say("pc1b", hello("pc1", "client", { held: 8, complete: true }));
  assert.equal((h.to("pc1b")[0] as WelcomeMessage).id, "pc1");
  h.prove("pc1b");
  assert.equal(h.core.peers.get("pc1")!.verified, true);
  // The same claim from another address is a stranger's: it may serve, it does not count.
  h.open("evil", "10.0.0.66");
  h.say("evil", hello("pc1", "client", { held: 8, complete: true }));
  h.prove("evil");
  assert.equal(h.core.peers.get("pc1-2")!.verified, false);
});
