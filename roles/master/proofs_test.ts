import assert from "node:assert/strict";
import type { MasterConfig } from "./core.ts";
import { coreHarness, helloMessage } from "./testkit.ts";

function harness(config: Partial<MasterConfig> = {}) {
  return coreHarness({ linger: 0, ...config });
}

function started(h: ReturnType<typeof harness>) {
  h.open("fake", "10.0.0.9");
  h.hello("fake", "fake");
  h.open("pc1", "10.0.0.1");
  h.say("pc1", helloMessage("pc1", "client"));
}

const types = (h: ReturnType<typeof harness>, name: string) => h.to(name).map((m) => m.type);

Deno.test("proofs: challenged at 'received', counted once the proof AND the read-back are in", () => {
  const h = harness({ expect: 1 });
  started(h);
  h.say("pc1", { type: "received" });
  // The challenge goes out with "received", while the PC reads its disk back.
  assert.equal(types(h, "pc1").at(-1), "challenge");
  h.prove("pc1");
  assert.equal(h.core.peers.get("pc1")!.verified, false, "not before its read-back");
  assert.equal(types(h, "pc1").includes("proved"), false);
  h.say("pc1", { type: "verified", ok: true, bad: [], seconds: 0.4 });
  assert.equal(h.core.peers.get("pc1")!.verified, true);
  assert.deepEqual(types(h, "pc1").slice(-2), ["proved", "end"]);
  assert.equal(types(h, "pc1").filter((t) => t === "challenge").length, 1, "one challenge");
});

Deno.test("proofs: the read-back first, then the answer; a wrong answer still fails it", () => {
  const h = harness({ expect: 1 });
  started(h);
  h.say("pc1", { type: "received" });
  h.say("pc1", { type: "verified", ok: true, bad: [], seconds: 0.4 });
  assert.equal(h.core.peers.get("pc1")!.verified, false, "not before its proof");
  h.prove("pc1");
  assert.equal(h.core.peers.get("pc1")!.verified, true);

  const w = harness();
  started(w);
  w.say("pc1", { type: "received" });
  w.say("pc1", { type: "proof", sha256: "0".repeat(64) });
  assert.match((w.to("pc1").at(-1) as { message: string }).message, /Wrong proof/);
  assert.deepEqual(w.closed, ["pc1"]);
  assert.equal(w.core.peers.get("pc1")!.verified, false);
});

Deno.test("proofs: a failed read-back voids the early challenge; the next read-back is proved", () => {
  const h = harness({ expect: 1 });
  started(h);
  h.say("pc1", { type: "received" });
  const challenges = () => types(h, "pc1").filter((t) => t === "challenge").length;
  // The read-back failed before the PC answered: its answer, when it comes, proves nothing.
  h.say("pc1", { type: "verified", ok: false, bad: [3], seconds: 0.4 });
  assert.equal(h.core.peers.get("pc1")!.state, "receiving", "sent to a server again");
  h.say("pc1", { type: "received" });
  assert.equal(challenges(), 1, "no second challenge while the first is out");
  h.say("pc1", { type: "verified", ok: true, bad: [], seconds: 0.2 });
  h.prove("pc1"); // the voided challenge's answer: dropped, and the next challenge goes out
  assert.equal(h.core.peers.get("pc1")!.verified, false);
  assert.equal(types(h, "pc1").at(-1), "challenge");
  assert.deepEqual(h.closed, []);
  h.prove("pc1");
  assert.equal(h.core.peers.get("pc1")!.verified, true);
  assert.equal(challenges(), 2);
});

Deno.test("proofs: a second answer to one challenge is refused", () => {
  const h = harness();
  started(h);
  h.say("pc1", { type: "received" });
  h.prove("pc1");
  h.prove("pc1");
  assert.match((h.to("pc1").at(-1) as { message: string }).message, /Unexpected "proof"/);
});
