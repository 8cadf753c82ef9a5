// The scheduler: the seed's two FIFO queues as a pure state machine. No Deno.*, no clock, no
// I/O: every event carries its own time `at` (seconds), so the master runs it live and the
// simulator runs the very same code on simulated time.
//
// Rules (seed + DESIGN.md), and the choices this file makes where they were open:
// - FIFO server queue, FIFO client queue. When the client queue holds as many clients as the
//   head server's capacity, that server gets that many clients, oldest first; both leave the
//   queues. Repeated after every event until nothing more can go. Servers are strictly FIFO:
//   a small server behind a head that is still filling waits too (the linger releases both).
// - Linger: a batch that cannot fill goes out partial (min(capacity, waiting)) once its oldest
//   client has waited `linger` seconds. A client's `since` is when it joined with client-ready;
//   a client that fails (or whose server leaves) goes back to the HEAD of the client queue
//   keeping that `since`, so it is not made to wait a second linger and usually leaves at once.
// - No cycles. Client C may not get server S when S is C or S is downstream of C (following
//   `upstream` links from S reaches C). The choice is client-driven so that nobody starves:
//   clients are taken in queue order; each gets the FIRST ALLOWED server in queue order (the
//   head server unless that one is forbidden for it); that server's batch is then filled with
//   the clients, in queue order, that are allowed for it. A client with no allowed server waits
//   where it is and does not hold up the clients behind it. Without relays this is exactly the
//   seed's rule (the head client's first allowed server is always the head server).
// - A batch is done when each of its clients has received (a requeued client may receive too:
//   its old fetch went on), failed or left: its server goes to the TAIL of the server queue
//   (batch-done). A peer that leaves is removed from everything at
//   once; if it was serving, its batch clients go back to the head of the client queue (in batch
//   order) as if they had failed.
// - Relay mode: every assigned client joins the tail of the server queue at once (kind "relay",
//   capacity relayCapacity), because it serves each chunk as soon as it has verified it. It
//   stays a server after its own client-failed (it holds verified chunks; its downstream just
//   waits for more) and after client-received (no server-ready needed then: a second join for
//   an id already serving or queued is rejected as a duplicate).
// - A server that `ejectAfter` (3) different clients report failed leaves the server queue for
//   the rest of the run, unless it is the only server left; below that, a client is given a
//   server it failed with again only after a doubling backoff (scheduler_eject.ts).
//
// Why relays default to fan-out 1 (a chain): on a switched full-duplex LAN every port has its
// own uplink and downlink. A relay serving k downstream splits its uplink k ways, so a tree of
// fan-out k runs every hop at B/k: about k·S/B for the whole room. A chain gives every hop the
// whole port, and each PC lags its upstream by one hop: S/B + (N-1)·h, where a relay sends a chunk on as it
// comes (cut-through) h is its own work (0.12 s a hop on a loaded lab; BENCHMARKS.md), and
// δ = chunk/B more where it waited for whole chunks; for N-1 < (k-1)·(S/chunk) (thousands of PCs for a GB image) that beats any tree. The price: a chain
// runs at its slowest link, and a failure mid-chain sends everything below the failed relay
// back to the client queue (they keep what they verified and resume from another server).
//
// Fitting the room (relay mode):
// - Slow and stalled PCs (adapt.ts says which, and why the thresholds): a demoted PC becomes a
//   LEAF: its first downstream client is MOVED to its own upstream (taking its slot; the client
//   resumes from what it verified), any other downstream goes back to the head of the client
//   queue, and the demoted PC itself goes back to the queue. Leaves are served after every other
//   waiting client, so they end up under a chain's tail, and a leaf serves only leaves: they
//   form a tail of their own below the chain and delay nobody else. Among leaves the faster
//   go first, and a leaf serves only leaves no faster than the rate it was demoted at (its
//   probe, its hop's rate, 0 when stalled): a PC demoted for the machine's load never queues
//   below a PC on a slow port; it waits for a server that frees instead (which comes as the
//   first PCs finish, at about one image time). A PC is demoted once, never promoted back.
// - Switches: a client (from LLDP or the admin's topology file) prefers a server on its own
//   switch, and a server fills its batch with clients of its own switch first, so a chain runs
//   through one switch before it crosses an uplink: once per switch instead of about every other
//   hop. Unknown switches all count as one, which is the plain FIFO rule.
// - Sources faster than the PCs: a fake server or server that says its port rate (server-ready
//   \`rate\`) feeds floor(rate / the PCs' median probe rate) chains at once (at least 1, at most
//   its capacity), since every chain takes one PC port's worth of its uplink.
import { type AdaptConfig, DEFAULT_ADAPT, hopDemotion, probeDemotion } from "./adapt.ts";
import { HopMeter } from "./hop_meter.ts";
import { scaledAdapt } from "./report_pace.ts";
import { FailureReports } from "./scheduler_eject.ts";
import { checkEvent } from "./scheduler_check.ts";
import { type PickState, plans } from "./scheduler_pick.ts";
import type {
  Batch,
  ClientEntry,
  Decision,
  Plan,
  SchedulerConfig,
  SchedulerEvent,
  SchedulerSnapshot,
  ServerEntry,
} from "./scheduler_types.ts";

export type {
  Decision,
  SchedulerConfig,
  SchedulerEvent,
  SchedulerSnapshot,
  ServerKind,
} from "./scheduler_types.ts";

export class Scheduler {
  readonly #config: SchedulerConfig;
  #servers: ServerEntry[] = [];
  #clients: ClientEntry[] = [];
  /** Active batches by server id. */
  #batches = new Map<string, Batch>();
  /** client id -> server id, exactly the clients of active batches. */
  #upstream = new Map<string, string>();
  #paused = false;
  #adapt: AdaptConfig | false; // #baseAdapt's thresholds scaled to the reports' pace
  readonly #baseAdapt: AdaptConfig | false;
  readonly #meter: HopMeter;
  #leaves = new Set<string>();
  /** Each leaf's rate when it was demoted (adapt.ts Demotion.rate). */
  #leafRate = new Map<string, number>();
  /** When each client was first found slow (the slow rule waits for it to last). */
  #slowSince = new Map<string, number>();
  /** Every client this run has seen (the in-run rules demote at most a share of them). */
  #seen = new Set<string>();
  #inRun = 0;
  #blamed = new Set<string>();
  readonly #reports: FailureReports;
  #switchOf = new Map<string, string>();
  #probes = new Map<string, number>();
  /** When the in-run rules last looked (see apply). */
  #scannedAt = -Infinity;
  /** The earliest linger deadline after the last pass of the pick rules found no batch ready. */
  #due = Infinity;
  /** The last event's time (the pick rules' backoffs are measured against it). */
  #now = -Infinity;

  constructor(config: SchedulerConfig) {
    if (typeof config.linger !== "number" || Number.isNaN(config.linger) || config.linger < 0) {
      throw new RangeError(`Invalid linger "${config.linger}": must be a number of seconds >= 0`);
    }
    if (config.mode !== "classic" && config.mode !== "relay") {
      throw new TypeError(`Invalid scheduler mode "${config.mode}": expected "classic" or "relay"`);
    }
    if (!Number.isInteger(config.relayCapacity) || config.relayCapacity < 1) {
      throw new RangeError(
        `Invalid relay capacity "${config.relayCapacity}": must be a whole number >= 1`,
      );
    }
    const adapt = config.adapt ?? DEFAULT_ADAPT;
    if (adapt) {
      for (const [key, v] of Object.entries(adapt)) {
        if (typeof v !== "number" || !(v > 0) || (/Share$/.test(key) && v >= 1)) {
          throw new RangeError(`Invalid adapt ${key} "${v}": must be > 0 (a share: below 1)`);
        }
      }
    }
    this.#config = { ...config };
    this.#reports = new FailureReports(config.ejectAfter);
    this.#adapt = this.#baseAdapt = config.mode === "relay" ? adapt : false;
    const a = adapt || DEFAULT_ADAPT;
    this.#meter = new HopMeter(a.window, 2 * a.stallAfter);
  }

  apply(event: SchedulerEvent): Decision[] {
    const problem = checkEvent(event, {
      servers: this.#servers,
      clients: this.#clients,
      batches: this.#batches,
      upstream: this.#upstream,
      paused: this.#paused,
      ejected: (id) => this.#reports.ejected(id),
    });
    if (problem) return [{ type: "rejected", event, reason: problem }];
    const out: Decision[] = [];
    const at = event.at;
    this.#now = at;
    switch (event.type) {
      case "server-ready":
        this.#servers.push({
          id: event.id,
          capacity: event.capacity,
          kind: event.kind,
          since: at,
          ...(event.rate !== undefined ? { rate: event.rate } : {}),
        });
        if (event.switch !== undefined) this.#switchOf.set(event.id, event.switch);
        break;
      case "client-ready":
        this.#clients.push({ id: event.id, since: at });
        this.#seen.add(event.id);
        if (event.switch !== undefined) this.#switchOf.set(event.id, event.switch);
        if (event.probe !== undefined) this.#probes.set(event.id, event.probe);
        break;
      case "progress":
        this.#meter.report(event.id, event.bytes, at);
        break;
      case "client-received":
        if (this.#upstream.has(event.id)) this.#finishClient(event.id, at, out);
        else this.#clients = this.#clients.filter((c) => c.id !== event.id);
        break;
      case "client-failed": {
        const server = this.#upstream.get(event.id)!;
        const reporters = this.#reports.report(server, event.id, at);
        // Never the last source: a relay holds only part of the image, so a source (fake or
        // server) leaves only while another source is there; a relay while any server is.
        const all = [...this.#servers, ...[...this.#batches.values()].map((b) => b.server)];
        const kind = all.find((x) => x.id === server)?.kind;
        const others = all.some((x) => x.id !== server && (kind === "relay" || x.kind !== "relay"));
        if (reporters && others) {
          this.#reports.eject(server);
          this.#servers = this.#servers.filter((s) => s.id !== server);
          out.push({ type: "ejected", server, clients: reporters, at });
        }
        const entry = this.#finishClient(event.id, at, out);
        this.#clients.unshift(entry);
        out.push({ type: "requeued", client: event.id, reason: event.reason, at });
        break;
      }
      case "leave":
        this.#leave(event.id, at, out);
        break;
      case "pause":
        this.#paused = true;
        break;
      case "resume":
        this.#paused = false;
        break;
      case "tick":
        break;
      case "pace":
        if (this.#baseAdapt) {
          this.#adapt = scaledAdapt(this.#baseAdapt, event.reportMs);
          this.#meter.resize(this.#adapt.window, 2 * this.#adapt.stallAfter);
        }
        break;
    }
    // A progress report or a tick changes only the meter and the time. The probe rule reads
    // neither, and the pick rules found no batch ready after the last event, so only a linger
    // deadline that passed can make one now. The in-run rules read both; but a look costs
    // O(PCs), so they look at most every scanEvery seconds, whatever the event: on every report
    // a room of 1,500 cost the master a core, and on every other event (1,500 PCs joining, or
    // finishing within seconds) O(PCs²) held its thread for 2 s at a time. Their evidence is
    // seconds of reports (a window, a stall), so a quarter second later judges the same.
    const passive = event.type === "progress" || event.type === "tick" || event.type === "pace";
    const hops = !this.#adapt || at >= this.#scannedAt + this.#adapt.scanEvery;
    if (passive && !hops && at < this.#due) return out;
    if (hops && !this.#paused) this.#scannedAt = at;
    // An assignment can give adapt.ts new evidence and a demotion free a slot: until still.
    for (let n = -1; !this.#paused && n !== out.length;) {
      const first = n === -1;
      n = out.length;
      this.#adaptAll(at, out, !(passive && first), hops);
      this.#assignAll(at, out);
    }
    return out;
  }

  /** Is the peer in a queue or a batch (what a "leave" needs)? */
  knows(id: string): boolean {
    return this.#servers.some((s) => s.id === id) || this.#batches.has(id) ||
      this.#clients.some((c) => c.id === id) || this.#upstream.has(id);
  }

  /** The queues alone (copies) and the pause: what the status shows, without the links. */
  queues(): Pick<SchedulerSnapshot, "serverQueue" | "clientQueue" | "paused"> {
    return {
      serverQueue: this.#servers.map((s) => ({ ...s })),
      clientQueue: this.#clients.map((c) => ({ ...c })),
      paused: this.#paused,
    };
  }

  snapshot(): SchedulerSnapshot {
    return {
      serverQueue: this.#servers.map((s) => ({ ...s })),
      clientQueue: this.#clients.map((c) => ({ ...c })),
      batches: [...this.#batches.values()].map((b) => ({
        server: b.server.id,
        capacity: b.server.capacity,
        clients: b.clients.map((c) => c.id),
        since: b.since,
      })),
      upstream: Object.fromEntries(this.#upstream),
      paused: this.#paused,
      leaves: [...this.#leaves],
      leafRates: Object.fromEntries(this.#leafRate),
      ejected: this.#reports.all(),
    };
  }

  /** Earliest time a tick could release a lingering batch (so callers know when to tick), or null. */
  nextDeadline(): number | null {
    if (this.#paused) return null;
    // After apply() no batch is ready, so every plan found here is one still lingering.
    let best = Infinity;
    for (const plan of this.#plans()) best = Math.min(best, plan.deadline);
    return Number.isFinite(best) ? best : null;
  }

  /** Why the event is inconsistent with the current state, or null when it may be applied. */

  /** Take a client out of its batch; emit batch-done when that empties the batch. */
  #finishClient(id: string, at: number, out: Decision[]): ClientEntry {
    const serverId = this.#upstream.get(id)!;
    this.#upstream.delete(id);
    this.#meter.stop(id);
    const batch = this.#batches.get(serverId)!;
    const entry = batch.clients.find((c) => c.id === id)!;
    batch.clients = batch.clients.filter((c) => c !== entry);
    if (batch.clients.length === 0) {
      this.#batches.delete(serverId);
      if (!this.#reports.ejected(serverId)) this.#servers.push({ ...batch.server, since: at });
      out.push({ type: "batch-done", server: serverId, at });
    }
    return entry;
  }

  #leave(id: string, at: number, out: Decision[]) {
    this.#servers = this.#servers.filter((s) => s.id !== id);
    this.#clients = this.#clients.filter((c) => c.id !== id);
    const serving = this.#batches.get(id);
    if (serving) {
      this.#batches.delete(id);
      for (const c of serving.clients) {
        this.#upstream.delete(c.id);
        this.#meter.stop(c.id);
      }
      this.#clients.unshift(...serving.clients);
      const reason = `server "${id}" left`;
      for (const c of serving.clients) out.push({ type: "requeued", client: c.id, reason, at });
    }
    // After the requeue above: a peer cannot be in its own batch, so order does not matter.
    if (this.#upstream.has(id)) this.#finishClient(id, at, out);
    this.#meter.forget(id);
    this.#switchOf.delete(id);
    this.#probes.delete(id);
    this.#leaves.delete(id);
    this.#leafRate.delete(id);
    this.#reports.forget(id);
  }

  /** Demote every PC adapt.ts names, one at a time (each demotion changes the chain): by the
   * probe rule unless nothing it reads changed, by the in-run rules when they look (apply). */
  #adaptAll(at: number, out: Decision[], probe: boolean, hops: boolean) {
    if (!this.#adapt) return;
    for (let changed = false;; changed = true) {
      const d = ((probe || changed) && this.#probes.size >= 2
        ? probeDemotion({
          upstream: this.#upstream,
          clients: [...this.#clients.map((c) => c.id), ...this.#upstream.keys()],
          leaves: this.#leaves,
          probes: this.#probes,
        }, this.#adapt)
        : null) ??
        (hops
          ? hopDemotion({
            at,
            slowSince: this.#slowSince,
            seen: this.#seen.size,
            inRun: this.#inRun,
            upstream: this.#upstream,
            leaves: this.#leaves,
            blamed: this.#blamed,
            meter: this.#meter,
          }, this.#adapt)
          : null);
      if (!d) return;
      const { id } = d;
      this.#leaves.add(id);
      this.#leafRate.set(id, d.rate);
      if (d.reason !== "probe") this.#inRun++;
      out.push({ type: "demoted", peer: id, reason: d.reason, detail: d.detail, at });
      const serving = this.#batches.get(id);
      const up = this.#upstream.get(id);
      if (!serving) continue; // nobody below it; it stays queued for leaves only
      this.#batches.delete(id);
      if (!this.#reports.ejected(id)) this.#servers.push({ ...serving.server, since: at });
      for (const c of serving.clients) {
        this.#upstream.delete(c.id);
        this.#meter.stop(c.id);
      }
      let rest = serving.clients;
      if (up !== undefined) {
        // Its first downstream takes its slot upstream; it goes back to the queue as a leaf.
        if (d.reason !== "probe") this.#blamed.add(up);
        const batch = this.#batches.get(up)!;
        const entry = batch.clients.find((c) => c.id === id)!;
        const [first, ...others] = serving.clients;
        batch.clients = batch.clients.map((c) => (c === entry ? first : c));
        this.#upstream.delete(id);
        this.#meter.stop(id);
        this.#upstream.set(first.id, up);
        this.#meter.start(first.id, at);
        out.push({ type: "move", client: first.id, from: id, server: up, at });
        rest = others;
        this.#clients.unshift(entry);
        out.push({ type: "requeued", client: id, reason: `demoted: ${d.reason}`, at });
      }
      this.#clients.unshift(...rest);
      const reason = `relay "${id}" was demoted`;
      for (const c of rest) out.push({ type: "requeued", client: c.id, reason, at });
    }
  }

  #assignAll(at: number, out: Decision[]) {
    for (;;) {
      let plan: Plan | undefined;
      let due = Infinity;
      for (const p of this.#plans()) {
        if (!p.waiting && (p.full || at >= p.deadline)) {
          plan = p;
          break;
        }
        due = Math.min(due, p.deadline);
      }
      if (!plan) {
        this.#due = due;
        return;
      }
      const { server, clients } = plan;
      this.#servers = this.#servers.filter((s) => s !== server);
      const taken = new Set(clients);
      this.#clients = this.#clients.filter((c) => !taken.has(c));
      this.#batches.set(server.id, { server, clients, since: at });
      for (const c of clients) {
        this.#upstream.set(c.id, server.id);
        this.#meter.start(c.id, at);
      }
      out.push({
        type: "assign",
        server: server.id,
        clients: clients.map((c) => c.id),
        partial: !plan.full,
        at,
      });
      if (this.#config.mode === "relay") {
        for (const c of clients) {
          if (this.#servers.some((s) => s.id === c.id) || this.#batches.has(c.id)) continue;
          if (this.#reports.ejected(c.id)) continue;
          this.#servers.push({
            id: c.id,
            capacity: this.#config.relayCapacity,
            kind: "relay",
            since: at,
          });
        }
      }
    }
  }

  /** The pick rules (scheduler_pick.ts) over the current state. */
  #plans(): Generator<Plan> {
    return plans(
      {
        mode: this.#config.mode,
        linger: this.#config.linger,
        servers: this.#servers,
        clients: this.#clients,
        downstream: (server) => this.#batches.get(server)?.clients ?? [],
        leaves: this.#leaves,
        leafRate: this.#leafRate,
        switchOf: this.#switchOf,
        probes: this.#probes,
        at: this.#now,
        retryAt: (c, server) => this.#reports.retryAt(c, server),
      } satisfies PickState,
    );
  }
}
