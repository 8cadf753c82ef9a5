import assert from "node:assert/strict";
import { mulberry32 } from "../../imagetools/testkit.ts";
import {
  type Decision,
  Scheduler,
  type SchedulerConfig,
  type SchedulerEvent,
  type SchedulerSnapshot,
} from "./scheduler.ts";

const CLASSIC: SchedulerConfig = { linger: 10, mode: "classic", relayCapacity: 1 };
const RELAY: SchedulerConfig = { linger: 10, mode: "relay", relayCapacity: 1 };

// Shorthands so each table reads as the story it tells.
const server = (id: string, capacity: number, at: number, kind: "fake" | "server" = "server") =>
  ({ type: "server-ready", id, capacity, kind, at }) as const;
const client = (id: string, at: number) => ({ type: "client-ready", id, at }) as const;
const received = (id: string, at: number) => ({ type: "client-received", id, at }) as const;
const failed = (id: string, at: number, reason = "bad chunk") =>
  ({ type: "client-failed", id, at, reason }) as const;
const leave = (id: string, at: number) => ({ type: "leave", id, at }) as const;
const tick = (at: number) => ({ type: "tick", at }) as const;
const assign = (server: string, clients: string[], at: number, partial = false): Decision => ({
  type: "assign",
  server,
  clients,
  partial,
  at,
});
const done = (server: string, at: number): Decision => ({ type: "batch-done", server, at });
const requeued = (client: string, at: number, reason = "bad chunk"): Decision => ({
  type: "requeued",
  client,
  reason,
  at,
});

/** Replay events; returns the decisions of each event, one row per event. */
function replay(s: Scheduler, events: SchedulerEvent[]): Decision[][] {
  return events.map((e) => s.apply(e));
}

Deno.test("scheduler: FIFO queues give the head server the oldest clients, exact batches", () => {
  const s = new Scheduler(CLASSIC);
  assert.deepEqual(
    replay(s, [
      server("fake", 2, 0, "fake"),
      client("a", 1),
      client("b", 2),
      client("c", 3),
      client("d", 4),
      server("s1", 3, 5),
      server("s2", 3, 6),
      client("e", 7),
      client("f", 8),
      client("g", 9),
    ]),
    [
      [],
      [],
      [assign("fake", ["a", "b"], 2)],
      [],
      [],
      [],
      [],
      [assign("s1", ["c", "d", "e"], 7)],
      [],
      [],
    ],
  );
  assert.deepEqual(
    s.snapshot(),
    {
      serverQueue: [{ id: "s2", capacity: 3, kind: "server", since: 6 }],
      clientQueue: [{ id: "f", since: 8 }, { id: "g", since: 9 }],
      batches: [
        { server: "fake", capacity: 2, clients: ["a", "b"], since: 2 },
        { server: "s1", capacity: 3, clients: ["c", "d", "e"], since: 7 },
      ],
      upstream: { a: "fake", b: "fake", c: "s1", d: "s1", e: "s1" },
      paused: false,
      leaves: [],
      leafRates: {},
      ejected: [],
    } satisfies SchedulerSnapshot,
  );
});

Deno.test("scheduler: one event can fill several batches in queue order", () => {
  const s = new Scheduler(CLASSIC);
  replay(s, [client("a", 0), client("b", 0), client("c", 0), client("d", 0), client("e", 0)]);
  replay(s, [server("s1", 2, 1)]);
  assert.deepEqual(s.apply(server("s2", 2, 2)), [assign("s2", ["c", "d"], 2)]);
  assert.deepEqual(s.snapshot().clientQueue, [{ id: "e", since: 0 }]);
});

Deno.test("scheduler: a batch that cannot fill goes out partial after the linger", () => {
  const s = new Scheduler(CLASSIC);
  assert.deepEqual(replay(s, [server("s1", 3, 0), client("a", 1), client("b", 4)]), [[], [], []]);
  assert.equal(s.nextDeadline(), 11);
  assert.deepEqual(s.apply(tick(10.5)), []);
  assert.deepEqual(s.apply(tick(11)), [assign("s1", ["a", "b"], 11, true)]);
  assert.equal(s.nextDeadline(), null);
  // No server, no deadline: a server-ready itself brings the lingered client out at once.
  assert.deepEqual(s.apply(client("c", 12)), []);
  assert.equal(s.nextDeadline(), null);
  assert.deepEqual(s.apply(server("s2", 2, 30)), [assign("s2", ["c"], 30, true)]);
});

Deno.test("scheduler: a finished batch sends its server to the tail of the server queue", () => {
  const s = new Scheduler(CLASSIC);
  assert.deepEqual(
    replay(s, [
      server("fake", 2, 0, "fake"),
      client("a", 0),
      client("b", 0),
      server("s1", 3, 1),
      received("a", 20),
      received("b", 21),
      server("a", 3, 22),
    ]),
    [[], [], [assign("fake", ["a", "b"], 0)], [], [], [done("fake", 21)], []],
  );
  assert.deepEqual(s.snapshot().serverQueue, [
    { id: "s1", capacity: 3, kind: "server", since: 1 },
    { id: "fake", capacity: 2, kind: "fake", since: 21 },
    { id: "a", capacity: 3, kind: "server", since: 22 },
  ]);
  assert.deepEqual(s.snapshot().batches, []);
  assert.deepEqual(s.snapshot().upstream, {});
});

Deno.test("scheduler: a failed client goes back to the head of the client queue, keeping since", () => {
  const s = new Scheduler(CLASSIC);
  replay(s, [server("s1", 2, 0), client("a", 0), client("b", 1), client("x", 5)]);
  // s1 serves a and b; x waits alone. a fails at 8: a goes before x, still "since 0".
  assert.deepEqual(s.apply(failed("a", 8)), [requeued("a", 8)]);
  assert.deepEqual(s.snapshot().clientQueue, [{ id: "a", since: 0 }, { id: "x", since: 5 }]);
  assert.deepEqual(s.snapshot().batches, [{ server: "s1", capacity: 2, clients: ["b"], since: 1 }]);
  assert.deepEqual(s.snapshot().upstream, { b: "s1" });
  // s1 is still busy with b. When b fails too, s1 frees; a and b failed with it, their only
  // server, so it waits for a's backoff (2 s from 8): then a + x (a waited > linger) leave,
  // and b (its backoff ends at 11) stays at the head.
  assert.deepEqual(s.apply(failed("b", 9, "timeout")), [
    done("s1", 9),
    requeued("b", 9, "timeout"),
  ]);
  assert.equal(s.nextDeadline(), 10);
  assert.deepEqual(s.apply(tick(10)), [assign("s1", ["a", "x"], 10)]);
  assert.deepEqual(s.snapshot().clientQueue, [{ id: "b", since: 1 }]);
  // The kept since makes a lone failed client leave partial as soon as a server is free.
  const t = new Scheduler(CLASSIC);
  replay(t, [server("s1", 3, 0), client("a", 0), client("b", 0), client("c", 0)]);
  replay(t, [server("s2", 3, 1)]);
  assert.deepEqual(t.apply(failed("c", 30)), [requeued("c", 30), assign("s2", ["c"], 30, true)]);
});

Deno.test("scheduler: a server that leaves sends its batch back to the head, in batch order", () => {
  const s = new Scheduler(CLASSIC);
  replay(s, [
    server("s1", 3, 0),
    client("a", 0),
    client("b", 1),
    client("c", 2),
    client("d", 3),
    received("b", 5),
  ]);
  assert.deepEqual(s.apply(leave("s1", 6)), [
    requeued("a", 6, 'server "s1" left'),
    requeued("c", 6, 'server "s1" left'),
  ]);
  assert.deepEqual(s.snapshot(), {
    serverQueue: [],
    clientQueue: [{ id: "a", since: 0 }, { id: "c", since: 2 }, { id: "d", since: 3 }],
    batches: [],
    upstream: {},
    paused: false,
    leaves: [],
    leafRates: {},
    ejected: [],
  });
  assert.deepEqual(s.apply(server("s2", 3, 7)), [assign("s2", ["a", "c", "d"], 7)]);
});

Deno.test("scheduler: a client that leaves mid-batch frees its slot; the last one ends the batch", () => {
  const s = new Scheduler(CLASSIC);
  replay(s, [server("s1", 2, 0), client("a", 0), client("b", 0), client("w", 1)]);
  assert.deepEqual(s.apply(leave("a", 2)), []);
  assert.deepEqual(s.apply(leave("w", 3)), []);
  assert.deepEqual(s.apply(leave("b", 4)), [done("s1", 4)]);
  assert.deepEqual(s.snapshot(), {
    serverQueue: [{ id: "s1", capacity: 2, kind: "server", since: 4 }],
    clientQueue: [],
    batches: [],
    upstream: {},
    paused: false,
    leaves: [],
    leafRates: {},
    ejected: [],
  });
});

Deno.test("scheduler: pause holds every assignment until resume; other events still count", () => {
  const s = new Scheduler(CLASSIC);
  assert.deepEqual(
    replay(s, [
      server("s1", 2, 0),
      client("a", 0),
      { type: "pause", at: 1 },
      client("b", 2),
      client("c", 3),
      tick(50),
    ]),
    [[], [], [], [], [], []],
  );
  assert.equal(s.snapshot().paused, true);
  assert.equal(s.nextDeadline(), null);
  assert.deepEqual(s.apply({ type: "resume", at: 60 }), [assign("s1", ["a", "b"], 60)]);
  // c has waited since 3: linger already over, but no server is free.
  assert.equal(s.nextDeadline(), null);
  // Batch-done still happens while paused; the assignment waits for resume.
  s.apply({ type: "pause", at: 61 });
  replay(s, [received("a", 62)]);
  assert.deepEqual(s.apply(received("b", 63)), [done("s1", 63)]);
  assert.deepEqual(s.apply({ type: "resume", at: 64 }), [assign("s1", ["c"], 64, true)]);
});

Deno.test("scheduler: inconsistent events are rejected and change nothing", () => {
  const s = new Scheduler(CLASSIC);
  replay(s, [server("s1", 3, 0), client("a", 0)]);
  const before = s.snapshot();
  const bad: [SchedulerEvent, string][] = [
    [received("zz", 1), 'Client "zz" is in no batch and not queued'],
    [failed("s1", 1), 'Client "s1" is not in any batch'],
    [client("a", 1), 'Client "a" is already in the client queue'],
    [server("s1", 3, 1), 'Server "s1" is already in the server queue'],
    [server("s3", 0, 1), 'Invalid capacity "0" for server "s3": must be a whole number >= 1'],
    [server("s3", 1.5, 1), 'Invalid capacity "1.5" for server "s3": must be a whole number >= 1'],
    [
      { type: "server-ready", id: "s3", capacity: 1, kind: "boss" as "fake", at: 1 },
      'Invalid server kind "boss" for "s3"',
    ],
    [leave("nobody", 1), 'Peer "nobody" is in no queue and no batch'],
    [client("", 1), 'Invalid peer id "": must be a non-empty string'],
    [tick(NaN), 'Invalid time "NaN": must be a finite number of seconds'],
    [{ type: "resume", at: 1 }, "Not paused"],
    [{ type: "dance", at: 1 } as unknown as SchedulerEvent, 'Unknown event type "dance"'],
  ];
  for (const [event, reason] of bad) {
    assert.deepEqual(s.apply(event), [{ type: "rejected", event, reason }]);
    assert.deepEqual(s.snapshot(), before);
  }
  // Serving or receiving peers cannot join twice either.
  assert.deepEqual(s.apply(tick(10)), [assign("s1", ["a"], 10, true)]);
  const reasons = (e: SchedulerEvent) => s.apply(e).map((d) => d.type === "rejected" && d.reason);
  assert.deepEqual(reasons(client("a", 11)), ['Client "a" is already receiving from "s1"']);
  assert.deepEqual(reasons(server("s1", 3, 11)), ['Server "s1" is already serving a batch']);
  s.apply({ type: "pause", at: 12 });
  assert.deepEqual(reasons({ type: "pause", at: 13 }), ["Already paused"]);
});

Deno.test("scheduler: config is checked", () => {
  assert.throws(() => new Scheduler({ ...CLASSIC, linger: -1 }), RangeError);
  assert.throws(() => new Scheduler({ ...CLASSIC, relayCapacity: 0 }), RangeError);
  assert.throws(
    () => new Scheduler({ ...CLASSIC, mode: "mesh" as "relay" }),
    /Invalid scheduler mode "mesh"/,
  );
});

Deno.test("scheduler: relay mode builds chains; every assigned client joins the server queue", () => {
  const s = new Scheduler(RELAY);
  assert.deepEqual(
    replay(s, [
      server("fake", 1, 0, "fake"),
      client("a", 0),
      client("b", 0),
      client("c", 1),
    ]),
    [[], [assign("fake", ["a"], 0)], [assign("a", ["b"], 0)], [assign("b", ["c"], 1)]],
  );
  assert.deepEqual(s.snapshot().serverQueue, [{ id: "c", capacity: 1, kind: "relay", since: 1 }]);
  assert.deepEqual(s.snapshot().upstream, { a: "fake", b: "a", c: "b" });
  // a fails: fake frees and is a's only allowed server (c is downstream of a): a has it
  // again once its backoff (2 s) is over.
  assert.deepEqual(s.apply(failed("a", 5)), [done("fake", 5), requeued("a", 5)]);
  assert.deepEqual(s.apply(tick(7)), [assign("fake", ["a"], 7)]);
  // a kept serving b through its failure: b never left a.
  assert.deepEqual(s.snapshot().upstream, { a: "fake", b: "a", c: "b" });
  // Received: the relay stays a server, no server-ready needed (a second one is a duplicate).
  assert.deepEqual(s.apply(received("c", 9)), [done("b", 9)]);
  assert.equal(s.apply(server("c", 3, 9))[0].type, "rejected");
  assert.deepEqual(s.snapshot().serverQueue, [
    { id: "c", capacity: 1, kind: "relay", since: 1 },
    { id: "b", capacity: 1, kind: "relay", since: 9 },
  ]);
});

Deno.test("scheduler: relay mode never serves a client from its own downstream", () => {
  // Relay mode, fake serving two: a's branch and y's branch.
  const s = new Scheduler(RELAY);
  replay(s, [server("fake", 2, 0, "fake"), client("a", 0), client("y", 0)]);
  replay(s, [client("b", 1), client("z", 1), client("c", 2), client("d", 2)]);
  assert.deepEqual(s.snapshot().upstream, { a: "fake", y: "fake", b: "a", z: "y", c: "b", d: "z" });
  assert.deepEqual(s.snapshot().serverQueue.map((q) => q.id), ["c", "d"]);
  // Head server c is downstream of a (c -> b -> a): a takes the first allowed one, d.
  assert.deepEqual(s.apply(failed("a", 5)), [requeued("a", 5), assign("d", ["a"], 5)]);
  assert.deepEqual(s.snapshot().serverQueue.map((q) => q.id), ["c"]);
});

Deno.test("scheduler: a client with no allowed server waits; clients behind it are served", () => {
  // Classic mode with the master turning receiving peers into servers by hand.
  const s = new Scheduler(CLASSIC);
  replay(s, [server("fake", 2, 0, "fake"), client("a", 0), client("y", 0)]);
  replay(s, [server("a", 1, 1), client("b", 1), server("b", 1, 2)]);
  assert.deepEqual(s.snapshot().upstream, { a: "fake", y: "fake", b: "a" });
  // a fails; the only queued server, b, is downstream of a: a waits at the head, no deadline.
  assert.deepEqual(s.apply(failed("a", 3)), [requeued("a", 3)]);
  assert.equal(s.nextDeadline(), null);
  assert.deepEqual(s.apply(tick(100)), []);
  // c, behind a, may use b.
  assert.deepEqual(s.apply(client("c", 101)), [assign("b", ["c"], 101)]);
  // When fake frees, a is first in line again.
  assert.deepEqual(s.apply(received("y", 102)), [
    done("fake", 102),
    assign("fake", ["a"], 102, true),
  ]);
});

Deno.test("scheduler: a relay that leaves sends its downstream back to the head of the queue", () => {
  const s = new Scheduler(RELAY);
  replay(s, [server("fake", 1, 0, "fake"), client("a", 0), client("b", 0), client("w", 1)]);
  // fake -> a -> b -> w. a leaves: b goes back to the head; fake frees and takes b at once.
  assert.deepEqual(s.apply(leave("a", 2)), [
    requeued("b", 2, 'server "a" left'),
    done("fake", 2),
    assign("fake", ["b"], 2),
  ]);
  assert.deepEqual(s.snapshot().upstream, { b: "fake", w: "b" });
  assert.deepEqual(s.snapshot().serverQueue.map((q) => q.id), ["w"]);
});

// ---- Property test: random event sequences against the invariants -------------------------

/** Every invariant the brief names; throws with the reason. `active`: clients owed an image. */
function checkInvariants(s: Scheduler, active: Set<string>, mode: "classic" | "relay") {
  const snap = s.snapshot();
  // Never a client lost, never in two places: each active client is in exactly one place.
  const places = new Map<string, number>();
  const count = (id: string) => places.set(id, (places.get(id) ?? 0) + 1);
  for (const c of snap.clientQueue) count(c.id);
  for (const b of snap.batches) b.clients.forEach(count);
  for (const id of active) {
    assert.equal(places.get(id), 1, `client "${id}" is in ${places.get(id) ?? 0} places`);
  }
  for (const id of places.keys()) {
    assert.ok(active.has(id), `"${id}" is queued but not owed an image`);
  }
  // upstream is exactly the batches; never more clients than capacity; no empty batch.
  const links: Record<string, string> = {};
  for (const b of snap.batches) {
    assert.ok(b.clients.length >= 1 && b.clients.length <= b.capacity, `batch of "${b.server}"`);
    for (const c of b.clients) links[c] = b.server;
  }
  assert.deepEqual(snap.upstream, links);
  // A server is queued once, and never queued while serving.
  const queued = snap.serverQueue.map((q) => q.id);
  assert.equal(new Set(queued).size, queued.length, `server queue ${queued}`);
  for (const b of snap.batches) {
    assert.ok(!queued.includes(b.server), `"${b.server}" queued and serving`);
  }
  // Never a cycle: following upstream from anywhere ends within as many steps as there are links.
  const n = Object.keys(snap.upstream).length;
  for (const start of Object.keys(snap.upstream)) {
    let x: string | undefined = start;
    for (let i = 0; x !== undefined; i++) {
      assert.ok(i <= n, `cycle through "${start}": ${JSON.stringify(snap.upstream)}`);
      x = snap.upstream[x];
      assert.notEqual(x, start, `cycle through "${start}": ${JSON.stringify(snap.upstream)}`);
    }
  }
  // Relay mode: every receiving client is also a server (queued or serving), but a leaf never.
  const serving = new Set([...queued, ...snap.batches.map((b) => b.server)]);
  if (mode === "relay") {
    for (const c of Object.keys(snap.upstream)) {
      if (!snap.leaves.includes(c) && !snap.ejected.includes(c)) {
        assert.ok(serving.has(c), `relay "${c}" lost`);
      }
    }
  }
  for (const b of snap.batches) {
    if (!snap.leaves.includes(b.server)) continue;
    for (const c of b.clients) {
      assert.ok(snap.leaves.includes(c), `leaf "${b.server}" serves "${c}"`);
      // A slow leaf never sits above a faster one.
      assert.ok(
        snap.leafRates[c] <= snap.leafRates[b.server],
        `leaf "${b.server}" (${snap.leafRates[b.server]}) serves faster "${c}" (${
          snap.leafRates[c]
        })`,
      );
    }
  }
  assert.equal(new Set(snap.leaves).size, snap.leaves.length, `leaves ${snap.leaves}`);
}

function randomRun(seed: number, mode: "classic" | "relay", steps: number) {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const ids = Array.from({ length: 3 + Math.floor(rnd() * 10) }, (_, i) => `p${i}`);
  const config: SchedulerConfig = {
    linger: pick([0, 2, 10]),
    mode,
    relayCapacity: pick([1, 1, 2, 3]),
  };
  const s = new Scheduler(config);
  const active = new Set<string>();
  const bytes = new Map<string, number>();
  const switches = pick([[undefined], ["sw1", "sw2"], ["sw1", "sw2", undefined]]);
  let at = 0;
  let deadlineTicks = 0;
  let demotions = 0;
  const everDemoted = new Set<string>();
  for (let step = 0; step < steps; step++) {
    at += pick([0, 0, 0.25, 0.5, 1, 3]);
    const snap = s.snapshot();
    const receiving = Object.keys(snap.upstream);
    const r = rnd();
    const deadline = s.nextDeadline();
    let event: SchedulerEvent;
    if (deadline !== null && r < 0.1) {
      at = Math.max(at, deadline);
      event = tick(at);
    } else if (r < 0.22) {
      const kind = pick(["fake", "server", "server"] as const);
      event = {
        ...server(pick(ids), rnd() < 0.03 ? 0 : 1 + Math.floor(rnd() * 3), at, kind),
        ...(pick(switches) ? { switch: pick(switches) } : {}),
        ...(rnd() < 0.3 ? { rate: pick([12, 30, 125]) * 1e6 } : {}),
      };
    } else if (r < 0.45) {
      const sw = pick(switches);
      event = {
        ...client(pick(ids), at),
        ...(sw ? { switch: sw } : {}),
        ...(rnd() < 0.5 ? { probe: pick([1, 6, 11, 12]) * 1e6 } : {}),
      };
    } else if (r < 0.55 && receiving.length) {
      // Progress at random rates, some stopped: demotions happen.
      const id = pick(receiving);
      const grow = pick([0, 0, 0.1, 1, 3, 6]) * 1e6;
      bytes.set(id, (bytes.get(id) ?? 0) + grow);
      event = { type: "progress", id, bytes: bytes.get(id)!, at };
    } else if (r < 0.62) {
      event = received(rnd() < 0.9 && receiving.length ? pick(receiving) : pick(ids), at);
    } else if (r < 0.75) {
      event = failed(rnd() < 0.9 && receiving.length ? pick(receiving) : pick(ids), at);
    } else if (r < 0.85) event = leave(pick(ids), at);
    else if (r < 0.9) event = { type: rnd() < 0.5 ? "pause" : "resume", at };
    else event = tick(at);

    const wasServer = "id" in event &&
      (snap.serverQueue.some((q) => q.id === event.id) ||
        snap.batches.some((b) => b.server === event.id));
    const decisions = s.apply(event);
    for (const d of decisions) {
      if (d.type !== "demoted") continue;
      demotions++;
      assert.ok(!everDemoted.has(d.peer), `"${d.peer}" demoted twice (seed ${seed})`);
      everDemoted.add(d.peer);
    }
    if (event.type === "leave") everDemoted.delete(event.id);
    const context = `seed ${seed} ${mode} step ${step}: ${JSON.stringify(event)} -> ${
      JSON.stringify(decisions)
    }`;
    try {
      if (decisions.some((d) => d.type === "rejected")) {
        assert.equal(decisions.length, 1);
        assert.deepEqual(s.snapshot(), snap, "a rejected event changed the state");
      } else if (event.type === "client-ready") active.add(event.id);
      else if (event.type === "client-received" || event.type === "leave") active.delete(event.id);
      checkInvariants(s, active, mode);
      const after = s.snapshot();
      for (const d of decisions) {
        if (d.type !== "assign") continue;
        // Never assigned to itself or to a server downstream of it.
        for (let x: string | undefined = d.server; x !== undefined; x = after.upstream[x]) {
          assert.ok(!d.clients.includes(x), `"${x}" assigned to itself or its downstream`);
        }
        assert.ok(!after.paused, "assigned while paused");
      }
      // A move re-attaches a receiving client higher up, never into its own downstream.
      const lastMove = new Map<string, string>();
      for (const d of decisions) {
        if (d.type === "move") lastMove.set(d.client, d.server);
        if (d.type === "requeued") lastMove.delete(d.client);
        if (d.type === "assign") d.clients.forEach((c) => lastMove.delete(c));
      }
      for (const [c, to] of lastMove) assert.equal(after.upstream[c] ?? to, to);
      for (const d of decisions) {
        if (d.type !== "move") continue;
        assert.ok(after.leaves.includes(d.from), `moved away from "${d.from}", not a leaf`);
      }
      if (event.type === "client-failed" && decisions[0].type === "requeued") {
        const assigned = decisions.some((d) => d.type === "assign" && d.clients.includes(event.id));
        // (A demotion in the same step may requeue others before it.)
        const demoted = decisions.some((d) => d.type === "demoted");
        if (!assigned && !demoted) {
          assert.equal(after.clientQueue[0].id, event.id, "failed client not at head");
        }
        // A relay keeps serving through its own failure.
        if (mode === "relay" && wasServer) {
          assert.ok(
            after.serverQueue.some((q) => q.id === event.id) ||
              after.batches.some((b) => b.server === event.id),
            "failed relay stopped serving",
          );
        }
      }
      if (event.type === "tick" && event.at === deadline) {
        // (Time alone may also demote a stalled PC first, which changes the plans.)
        // (A backoff's end may release a full batch.)
        assert.ok(
          decisions.some((d) => d.type === "assign") ||
            decisions.some((d) => d.type === "demoted"),
          "deadline released nothing",
        );
        deadlineTicks++;
      }
      // Nothing ready is left behind: a tick at the same time changes nothing. (A rejected event
      // changes nothing at all, not even a batch whose linger ran out since the last event.)
      if (decisions[0]?.type === "rejected") continue;
      const next = s.nextDeadline();
      assert.ok(next === null || next > at, `deadline ${next} not after ${at}`);
      assert.deepEqual(s.apply(tick(at)), []);
      assert.deepEqual(s.snapshot(), after);
    } catch (err) {
      throw new Error(`${context}\n${(err as Error).message}`, { cause: err });
    }
  }
  // The end of the run: a source comes, every receiving PC finishes, time passes.
  // Every PC owed an image ends up with it: nobody is stranded, leaves included.
  if (s.snapshot().paused) s.apply({ type: "resume", at });
  // (Random joins may have left only PCs that are themselves owed an image as servers.)
  s.apply(server("src", 1, at, "fake"));
  for (let round = 0; active.size && round < 200; round++) {
    at += 11;
    s.apply(tick(at));
    for (const id of Object.keys(s.snapshot().upstream)) {
      s.apply(received(id, at));
      active.delete(id);
    }
    checkInvariants(s, active, mode);
  }
  assert.equal(active.size, 0, `seed ${seed} ${mode}: never imaged: ${[...active]}`);
  return { deadlineTicks, demotions };
}

Deno.test("scheduler property: random sequences keep every invariant (both modes)", () => {
  let deadlineTicks = 0;
  let demotions = 0;
  for (let seed = 1; seed <= 1500; seed++) {
    for (const mode of ["classic", "relay"] as const) {
      const r = randomRun(seed, mode, 80);
      deadlineTicks += r.deadlineTicks;
      demotions += r.demotions;
    }
  }
  // The generator really exercised the linger path and the demotions, not only full batches.
  assert.ok(deadlineTicks > 100, `only ${deadlineTicks} deadline ticks`);
  assert.ok(demotions > 300, `only ${demotions} demotions`);
});

// ---- Fitting the room: demotion, re-attachment, switches, chains from a fast source ---------

const MB = 1e6;
const progress = (id: string, bytes: number, at: number) =>
  ({ type: "progress", id, bytes, at }) as const;
const probed = (id: string, at: number, probe: number, sw?: string) =>
  ({ type: "client-ready", id, at, probe, ...(sw ? { switch: sw } : {}) }) as const;
const onSwitch = (id: string, at: number, sw: string) =>
  ({ type: "client-ready", id, at, switch: sw }) as const;
const chainOf = (s: Scheduler, from: string) => {
  const up = s.snapshot().upstream;
  const out = [from];
  for (;;) {
    const next = Object.keys(up).find((c) => up[c] === out[out.length - 1]);
    if (!next) return out;
    out.push(next);
  }
};

Deno.test("scheduler: a PC whose probe is far below the room's is a leaf from the start, at the end", () => {
  const s = new Scheduler(RELAY);
  // The first probes decide nothing alone; a faster one shows the slow one.
  assert.deepEqual(replay(s, [probed("slow", 0, 1.1 * MB), probed("a", 0, 11 * MB)]), [[], [
    {
      type: "demoted",
      peer: "slow",
      reason: "probe",
      detail: "probe 1.10 MB/s < 0.25 x the median 11.00 MB/s",
      at: 0,
    },
  ]]);
  replay(s, [probed("b", 0, 11.5 * MB), probed("c", 0, 11 * MB)]);
  assert.deepEqual(s.apply(server("fake", 1, 1, "fake")), [
    assign("fake", ["a"], 1),
    assign("a", ["b"], 1),
    assign("b", ["c"], 1),
    assign("c", ["slow"], 1),
  ]);
  assert.deepEqual(chainOf(s, "fake"), ["fake", "a", "b", "c", "slow"]);
  // A leaf serves only leaves: a late joiner waits for a real relay rather than sit below it.
  assert.deepEqual(s.snapshot().serverQueue.map((q) => q.id), ["slow"]);
  assert.deepEqual(s.snapshot().leaves, ["slow"]);
  assert.deepEqual(s.apply(client("late", 2)), []);
  assert.deepEqual(s.apply(received("a", 9)), [done("fake", 9), assign("fake", ["late"], 9)]);
});

Deno.test("scheduler: a relay slower than its upstream is demoted; its downstream moves up", () => {
  const s = new Scheduler(RELAY);
  replay(s, [server("fake", 1, 0, "fake"), client("a", 0), client("x", 0), client("d", 0)]);
  replay(s, [client("e", 0)]);
  assert.deepEqual(chainOf(s, "fake"), ["fake", "a", "x", "d", "e"]);
  // Half-second reports: a and its own upstream at 12 MB/s; x (and so d and e) at 1.2 MB/s.
  const rows: Decision[][] = [];
  for (let t = 0.5; t <= 3; t += 0.5) {
    rows.push(s.apply(progress("a", 12 * MB * t, t)));
    for (const id of ["x", "d", "e"]) rows.push(s.apply(progress(id, 1.2 * MB * t, t)));
  }
  // Judged once its hop is a whole window (2 s) old, and slow for half a window more: at the
  // first report at 3 s (a's).
  assert.deepEqual(rows.slice(0, 20).flat(), []);
  assert.deepEqual(rows[20], [
    {
      type: "demoted",
      peer: "x",
      reason: "slow",
      detail: '1.20 MB/s < 0.5 x "a" 12.00 MB/s',
      at: 3,
    },
    { type: "move", client: "d", from: "x", server: "a", at: 3 },
    requeued("x", 3, "demoted: slow"),
    assign("e", ["x"], 3),
  ]);
  assert.deepEqual(rows.slice(21).flat(), []);
  assert.deepEqual(chainOf(s, "fake"), ["fake", "a", "d", "e", "x"]);
  // x is queued again as a server, for leaves only.
  assert.deepEqual(s.snapshot().serverQueue.map((q) => q.id), ["x"]);
  // d's new hop under a is as fast as a: nothing more moves, then or later (no flapping).
  for (let t = 3.5; t <= 8; t += 0.5) {
    assert.deepEqual(s.apply(progress("a", 12 * MB * t, t)), []);
    assert.deepEqual(s.apply(progress("d", 3 * MB + 12 * MB * (t - 2.5), t)), []);
    assert.deepEqual(s.apply(progress("e", 3 * MB + 12 * MB * (t - 2.5), t)), []);
    assert.deepEqual(s.apply(progress("x", 3 * MB + 1.2 * MB * (t - 2.5), t)), []);
  }
});

Deno.test("scheduler: a stalled relay is worked around; only the one whose upstream moves", () => {
  const s = new Scheduler(RELAY);
  replay(s, [server("fake", 1, 0, "fake"), client("a", 0), client("x", 0), client("d", 0)]);
  replay(s, [client("e", 0)]);
  for (let t = 0.5; t <= 2; t += 0.5) {
    for (const id of ["a", "x", "d", "e"]) s.apply(progress(id, 12 * MB * t, t));
  }
  // x stops at 2 s (SIGSTOP); d and e stop with it, a goes on. Seen 1 s after a's first report
  // of growth since x's last (2.5 s): at 3.5 s.
  const rows: Decision[][] = [];
  for (let t = 2.5; t <= 3.5; t += 0.25) {
    rows.push(s.apply(progress("a", 12 * MB * t, t)));
    for (const id of ["d", "e"]) rows.push(s.apply(progress(id, 24 * MB, t)));
  }
  const decided = rows.flat();
  assert.deepEqual(decided, [
    {
      type: "demoted",
      peer: "x",
      reason: "stalled",
      detail: 'no byte for 1.50 s while "a" moved',
      at: 3.5,
    },
    { type: "move", client: "d", from: "x", server: "a", at: 3.5 },
    requeued("x", 3.5, "demoted: stalled"),
    assign("e", ["x"], 3.5),
  ]);
  // d and e were not blamed though they did not move either: their upstream had stopped.
  assert.deepEqual(s.snapshot().leaves, ["x"]);
});

Deno.test("scheduler: a second stall under the same upstream blames the upstream: no more moves", () => {
  const s = new Scheduler(RELAY);
  replay(s, [server("fake", 1, 0, "fake"), client("a", 0), client("x", 0), client("d", 0)]);
  for (let t = 0.5; t <= 2; t += 0.5) {
    for (const id of ["a", "x", "d"]) s.apply(progress(id, 12 * MB * t, t));
  }
  s.apply(progress("a", 30 * MB, 2.5));
  const first = s.apply(progress("a", 36 * MB, 3.5));
  assert.deepEqual(first.filter((d) => d.type === "demoted").map((d) => d.type), ["demoted"]);
  assert.deepEqual(chainOf(s, "fake"), ["fake", "a", "d", "x"]);
  // d under a gets nothing either, while a goes on: a's upload is the problem, d stays put.
  for (let t = 4; t <= 8; t += 0.5) {
    assert.deepEqual(s.apply(progress("a", 36 * MB + 12 * MB * (t - 3.5), t)), []);
  }
  assert.deepEqual(s.snapshot().leaves, ["x"]);
});

Deno.test("scheduler: a chain runs through one switch before it crosses the uplink", () => {
  const s = new Scheduler(RELAY);
  // PCs boot in no particular order over two switches; the fake server sits on sw1.
  const sws = ["sw2", "sw1", "sw2", "sw1", "sw1", "sw2", "sw2", "sw1"];
  replay(s, sws.map((sw, i) => onSwitch(`p${i + 1}`, 0, sw)));
  s.apply({ type: "server-ready", id: "fake", capacity: 1, kind: "fake", at: 1, switch: "sw1" });
  const chain = chainOf(s, "fake");
  assert.deepEqual(chain, ["fake", "p2", "p4", "p5", "p8", "p1", "p3", "p6", "p7"]);
  const swOf = (id: string) => (id === "fake" ? "sw1" : sws[Number(id.slice(1)) - 1]);
  const crossings = chain.slice(1).filter((id, i) => swOf(id) !== swOf(chain[i])).length;
  assert.equal(crossings, 1);
  // Unknown switches count as one: the plain join order.
  const t = new Scheduler(RELAY);
  replay(t, [client("a", 0), client("b", 0), server("fake", 1, 1, "fake")]);
  assert.deepEqual(chainOf(t, "fake"), ["fake", "a", "b"]);
});

Deno.test("scheduler: a source on a faster port starts as many chains as its port feeds", () => {
  const s = new Scheduler(RELAY);
  for (let i = 1; i <= 7; i++) s.apply(probed(`p${i}`, 0, 11.4 * MB));
  // 1 Gbit/s source (125 MB/s), PCs' probes 11.4 MB/s: 10 chains, capped at its capacity 3.
  const decided = s.apply({
    type: "server-ready",
    id: "fake",
    capacity: 3,
    kind: "fake",
    at: 1,
    rate: 125 * MB,
  });
  assert.deepEqual(decided[0], assign("fake", ["p1", "p2", "p3"], 1));
  assert.deepEqual(chainOf(s, "p1"), ["p1", "p4", "p7"]);
  // The same source at the PCs' own rate feeds one chain.
  const t = new Scheduler(RELAY);
  for (let i = 1; i <= 3; i++) t.apply(probed(`p${i}`, 0, 11.4 * MB));
  t.apply({ type: "server-ready", id: "fake", capacity: 3, kind: "fake", at: 1, rate: 12.5 * MB });
  assert.deepEqual(chainOf(t, "fake"), ["fake", "p1", "p2", "p3"]);
});

Deno.test("scheduler: a PC demoted for load never queues below a PC on a slow port", () => {
  const s = new Scheduler(RELAY);
  // "port" is on a 10 Mbit/s port: a leaf from its probe; b will slow down for the machine's load.
  replay(s, [probed("port", 0, 1.1 * MB), probed("a", 0, 11 * MB), probed("b", 0, 11 * MB)]);
  replay(s, [probed("c", 0, 11 * MB), server("fake", 1, 0, "fake")]);
  assert.deepEqual(chainOf(s, "fake"), ["fake", "a", "b", "c", "port"]);
  // a at 12 MB/s, b (and so c) at 5 MB/s, port at its own 1.1 MB/s.
  const rows: Decision[][] = [];
  for (let t = 0.5; t <= 3; t += 0.5) {
    rows.push(s.apply(progress("a", 12 * MB * t, t)));
    for (const id of ["b", "c"]) rows.push(s.apply(progress(id, 5 * MB * t, t)));
    rows.push(s.apply(progress("port", 1.1 * MB * t, t)));
  }
  // (b's own report at 3 s comes after it left its hop: rejected, it is not receiving.)
  const decided = rows.flat().filter((d) => d.type !== "rejected");
  assert.deepEqual(decided.map((d) => d.type), ["demoted", "move", "requeued"]);
  assert.deepEqual(decided[0], {
    type: "demoted",
    peer: "b",
    reason: "slow",
    detail: '5.00 MB/s < 0.5 x "a" 12.00 MB/s',
    at: 3,
  });
  // b (found at 5 MB/s) is not put under port (1.1 MB/s), the one server with a free slot:
  // it waits, and the first server that frees serves it at full speed.
  assert.deepEqual(chainOf(s, "fake"), ["fake", "a", "c", "port"]);
  assert.deepEqual(s.snapshot().clientQueue.map((c) => c.id), ["b"]);
  assert.deepEqual(s.snapshot().leafRates, { port: 1.1 * MB, b: 5 * MB });
  assert.deepEqual(s.apply(received("a", 6)), [done("fake", 6), assign("fake", ["b"], 6)]);
  // A slower leaf that comes later may go below a leaf (one no slower than it) at once.
  assert.deepEqual(s.apply(probed("late", 7, 0.5 * MB)).map((d) => d.type), ["demoted", "assign"]);
  assert.equal(s.snapshot().upstream.late, "port");
});

Deno.test("scheduler: the probe rule judges a PC while it serves nobody, never a relay", () => {
  const s = new Scheduler(RELAY);
  replay(s, [probed("a", 0, 11 * MB), probed("b", 0, 11 * MB), server("fake", 1, 0, "fake")]);
  assert.deepEqual(chainOf(s, "fake"), ["fake", "a", "b"]);
  // Faster probes come later (loopback noise, or faster PCs): a serves b already, b serves c.
  const later = replay(s, [probed("c", 1, 60 * MB), probed("d", 1, 60 * MB)]).flat();
  assert.deepEqual(later.filter((d) => d.type === "demoted"), []);
  assert.deepEqual(chainOf(s, "fake"), ["fake", "a", "b", "c", "d"]);
  // One that serves nobody yet is judged against them.
  replay(s, [probed("f", 2, 60 * MB), probed("g", 2, 60 * MB)]);
  assert.deepEqual(s.apply(probed("e", 3, 11 * MB)).map((d) => d.type), ["demoted", "assign"]);
  assert.deepEqual(chainOf(s, "fake"), ["fake", "a", "b", "c", "d", "f", "g", "e"]);
});
