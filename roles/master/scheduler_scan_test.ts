// What an event costs the scheduler: the in-run rules look at most every scanEvery seconds,
// whatever the event (reports, ticks, PCs joining or finishing), and a linger deadline that
// passed is released at the next report as at any other event.
import assert from "node:assert/strict";
import { type Decision, Scheduler, type SchedulerConfig } from "./scheduler.ts";

const RELAY: SchedulerConfig = { linger: 10, mode: "relay", relayCapacity: 1 };
const MB = 1e6;
const progress = (id: string, bytes: number, at: number) =>
  ({ type: "progress", id, bytes, at }) as const;
const client = (id: string, at: number) => ({ type: "client-ready", id, at }) as const;

/** fake -> a -> x -> d, all at 12 MB/s in half-second reports until x stops at 2 s. */
function stalledChain(): Scheduler {
  const s = new Scheduler(RELAY);
  s.apply({ type: "server-ready", id: "fake", capacity: 1, kind: "fake", at: 0 });
  for (const id of ["a", "x", "d"]) s.apply(client(id, 0));
  for (let t = 0.5; t <= 2; t += 0.5) {
    for (const id of ["a", "x", "d"]) s.apply(progress(id, 12 * MB * t, t));
  }
  s.apply(progress("a", 30 * MB, 2.5));
  return s;
}

const stalled = (at: number): Decision => ({
  type: "demoted",
  peer: "x",
  reason: "stalled",
  detail: `no byte for ${(at - 2).toFixed(2)} s while "a" moved`,
  at,
});

Deno.test("scheduler: on reports the in-run rules look at most every scanEvery (0.25 s)", () => {
  const s = stalledChain();
  // x is stalled from 3.5 s on (a grew at 2.5 s, x not since 2 s). The rules looked at 3.4 s,
  // so the reports at 3.5 and 3.6 s do not look again; the one at 3.75 s does.
  assert.deepEqual(s.apply(progress("a", 36 * MB, 3)), []);
  assert.deepEqual(s.apply(progress("a", 40.8 * MB, 3.4)), []);
  assert.deepEqual(s.apply(progress("a", 42 * MB, 3.5)), []);
  assert.deepEqual(s.apply(progress("a", 43.2 * MB, 3.6)), []);
  assert.deepEqual(s.apply({ type: "tick", at: 3.6 }), []);
  const decided = s.apply(progress("a", 45 * MB, 3.75));
  assert.deepEqual(decided[0], stalled(3.75));
  assert.deepEqual(decided.map((d) => d.type), ["demoted", "move", "requeued", "assign"]);
});

Deno.test("scheduler: other events look no more often, and a due look goes with any event", () => {
  const s = stalledChain();
  assert.deepEqual(s.apply(progress("a", 36 * MB, 3)), []);
  assert.deepEqual(s.apply(progress("a", 40.8 * MB, 3.4)), []);
  // A PC joining at 3.5 s, 0.1 s after the last look: the pick rules run (it goes below the
  // tail), the in-run rules do not, though x is stalled by then.
  const assign = (client: string, server: string, at: number): Decision[] => [
    { type: "assign", server, clients: [client], partial: false, at },
  ];
  assert.deepEqual(s.apply(client("late", 3.5)), assign("late", "d", 3.5));
  assert.deepEqual(s.apply(client("later", 3.6)), assign("later", "late", 3.6));
  // The next event from 3.65 s on looks, whatever it is: x is found then.
  const decided = s.apply(client("last", 3.65));
  assert.deepEqual(decided[0], stalled(3.65));
});

Deno.test("scheduler: a linger deadline that passed goes out at the next report", () => {
  const s = new Scheduler({ linger: 2, mode: "classic", relayCapacity: 1 });
  s.apply({ type: "server-ready", id: "fake", capacity: 1, kind: "fake", at: 0 });
  s.apply(client("a", 0));
  // A server for two: b alone waits its linger (2 s), while a reports.
  s.apply({ type: "server-ready", id: "s", capacity: 2, kind: "server", at: 0 });
  assert.deepEqual(s.apply(client("b", 0.5)), []);
  assert.equal(s.nextDeadline(), 2.5);
  assert.deepEqual(s.apply(progress("a", MB, 1)), []);
  assert.deepEqual(s.apply(progress("a", 2 * MB, 2.4)), []);
  assert.deepEqual(s.apply(progress("a", 3 * MB, 2.5)), [
    { type: "assign", server: "s", clients: ["b"], partial: true, at: 2.5 },
  ]);
  assert.equal(s.nextDeadline(), null);
});
