import assert from "node:assert/strict";
import { type Decision, Scheduler, type SchedulerConfig } from "./scheduler.ts";
import { FailureReports } from "./scheduler_eject.ts";

const CLASSIC: SchedulerConfig = { linger: 10, mode: "classic", relayCapacity: 1 };

Deno.test("scheduler: a server three different clients report failed leaves the queue", () => {
  const s = new Scheduler(CLASSIC);
  s.apply({ type: "server-ready", id: "rogue", capacity: 3, kind: "fake", at: 0 });
  s.apply({ type: "server-ready", id: "fake", capacity: 1, kind: "fake", at: 0 });
  for (const id of ["a", "b", "c"]) s.apply({ type: "client-ready", id, at: 1 });
  assert.deepEqual(s.snapshot().upstream, { a: "rogue", b: "rogue", c: "rogue" });
  const out: Decision[] = [];
  for (const id of ["a", "b", "c"]) {
    out.push(...s.apply({ type: "client-failed", id, at: 5, reason: "too-slow" }));
  }
  assert.deepEqual(out.filter((d) => d.type === "ejected"), [
    { type: "ejected", server: "rogue", clients: ["a", "b", "c"], at: 5 },
  ]);
  assert.ok(!out.some((d) => d.type === "assign" && d.server === "rogue"));
  const snap = s.snapshot();
  assert.ok(!snap.serverQueue.some((q) => q.id === "rogue"));
  assert.deepEqual(Object.values(snap.upstream), ["fake"], "the head client went to the fake");
  // It cannot join again, and it is never handed out again.
  const again = s.apply({ type: "server-ready", id: "rogue", capacity: 3, kind: "fake", at: 6 });
  assert.equal(again[0].type, "rejected");
  assert.equal(
    (again[0] as { reason: string }).reason,
    'Server "rogue" left the queue: several clients reported it failed',
  );
});

Deno.test("scheduler: one client failing again and again, or the last server, is not ejected", () => {
  const s = new Scheduler(CLASSIC);
  s.apply({ type: "server-ready", id: "only", capacity: 1, kind: "fake", at: 0 });
  s.apply({ type: "client-ready", id: "a", at: 0 });
  for (let i = 1; i <= 5; i++) {
    const out = s.apply({ type: "client-failed", id: "a", at: i, reason: "server-gone" });
    assert.ok(!out.some((d) => d.type === "ejected"));
  }
  for (const id of ["b", "c"]) s.apply({ type: "client-ready", id, at: 6 });
  for (let i = 0; i < 6; i++) {
    const id = s.snapshot().upstream.a !== undefined ? "a" : s.snapshot().upstream.b ? "b" : "c";
    const out = s.apply({ type: "client-failed", id, at: 7 + i, reason: "server-gone" });
    assert.ok(!out.some((d) => d.type === "ejected"), "the only server stays");
  }
});

Deno.test("FailureReports names a bad threshold", () => {
  assert.throws(() => new FailureReports(0), /Invalid ejectAfter "0": must be a whole number >= 1/);
});

Deno.test("scheduler: a client that failed with a server goes to another one when there is one", () => {
  const s = new Scheduler({ ...CLASSIC, linger: 0 });
  s.apply({ type: "server-ready", id: "rogue", capacity: 1, kind: "fake", at: 0 });
  s.apply({ type: "client-ready", id: "a", at: 0 });
  s.apply({ type: "server-ready", id: "fake", capacity: 1, kind: "fake", at: 1 });
  // a fails with the rogue: the rogue goes back to the queue's tail, behind the fake anyway;
  // make the rogue the head again to see the rule, by sending the fake a client first.
  s.apply({ type: "client-failed", id: "a", at: 2, reason: "too-slow" });
  assert.deepEqual(s.snapshot().upstream, { a: "fake" });
  s.apply({ type: "client-received", id: "a", at: 3 });
  s.apply({ type: "client-ready", id: "b", at: 4 });
  assert.deepEqual(s.snapshot().upstream, { b: "rogue" }, "b never failed with it");
  s.apply({ type: "client-failed", id: "b", at: 5, reason: "too-slow" });
  assert.deepEqual(s.snapshot().upstream, { b: "fake" });
});

Deno.test("scheduler: relay mode: the only source stays, whatever the relays below it", () => {
  const s = new Scheduler({ linger: 0, mode: "relay", relayCapacity: 1 });
  s.apply({ type: "server-ready", id: "fake", capacity: 1, kind: "fake", at: 0 });
  for (const id of ["a", "b", "c", "d"]) s.apply({ type: "client-ready", id, at: 0 });
  // a, b, c each fail with the fake in turn (relays are queued: they hold part of the image).
  for (let i = 0; i < 6; i++) {
    const id = Object.entries(s.snapshot().upstream).find(([, up]) => up === "fake")?.[0];
    if (!id) break;
    const out = s.apply({ type: "client-failed", id, at: 1 + i, reason: "server-gone" });
    assert.ok(!out.some((d) => d.type === "ejected"), "the only source never leaves");
  }
  assert.deepEqual(s.snapshot().ejected, []);
});

Deno.test("scheduler: a server a client failed with is its again only after a doubling backoff", () => {
  // Two PCs never make three reporters: the rogue stays queued, but a PC that failed with it
  // waits 2 s, 4 s, 8 s, ... (at most 32 s) before it is given it again, and never starves.
  const s = new Scheduler({ ...CLASSIC, linger: 0 });
  s.apply({ type: "server-ready", id: "rogue", capacity: 1, kind: "server", at: 0 });
  s.apply({ type: "client-ready", id: "a", at: 0 });
  assert.deepEqual(s.snapshot().upstream, { a: "rogue" });
  const handedOut: number[] = [];
  let at = 0;
  for (let i = 0; i < 7; i++) {
    at += 1;
    const out = s.apply({ type: "client-failed", id: "a", at, reason: "too-slow" });
    assert.ok(!out.some((d) => d.type === "assign"), "not straight back to the rogue");
    at = s.nextDeadline()!;
    const again = s.apply({ type: "tick", at });
    assert.deepEqual(again.map((d) => d.type), ["assign"], "the only source serves in the end");
    handedOut.push(at);
  }
  // Failed at 1, again at 3; failed at 4, again at 8; ... the backoffs 2, 4, 8, 16, 32, 32, 32.
  assert.deepEqual(handedOut, [3, 8, 17, 34, 67, 100, 133]);
});

Deno.test("scheduler: in its backoff a client takes any other free source, and the rogue waits", () => {
  const s = new Scheduler(CLASSIC);
  s.apply({ type: "server-ready", id: "rogue", capacity: 2, kind: "server", at: 0 });
  for (const id of ["a", "b"]) s.apply({ type: "client-ready", id, at: 0 });
  s.apply({ type: "server-ready", id: "fake", capacity: 1, kind: "fake", at: 0 });
  assert.deepEqual(s.snapshot().upstream, { a: "rogue", b: "rogue" });
  // a fails: the fake is free, it goes there. b fails: the fake is busy, the rogue is free (back
  // in the queue) but b waits its 2 s instead; the rogue is not given to a cooling client by
  // another's batch either.
  s.apply({ type: "client-failed", id: "a", at: 20, reason: "too-slow" });
  assert.deepEqual(s.snapshot().upstream, { a: "fake", b: "rogue" });
  const out = s.apply({ type: "client-failed", id: "b", at: 21, reason: "too-slow" });
  assert.ok(!out.some((d) => d.type === "assign"));
  assert.equal(s.nextDeadline(), 23);
  // The fake frees before b's backoff ends: b goes to the fake, not the rogue.
  s.apply({ type: "client-received", id: "a", at: 22 });
  assert.deepEqual(s.snapshot().upstream, { b: "fake" });
  assert.deepEqual(s.snapshot().serverQueue.map((q) => q.id), ["rogue"]);
});
