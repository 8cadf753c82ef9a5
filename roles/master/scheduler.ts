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
// - A batch is done when each of its clients has received, failed or left: its server goes to
//   the TAIL of the server queue (batch-done). A peer that leaves is removed from everything at
//   once; if it was serving, its batch clients go back to the head of the client queue (in batch
//   order) as if they had failed.
// - Relay mode: every assigned client joins the tail of the server queue at once (kind "relay",
//   capacity relayCapacity), because it serves each chunk as soon as it has verified it. It
//   stays a server after its own client-failed (it holds verified chunks; its downstream just
//   waits for more) and after client-received (no server-ready needed then: a second join for
//   an id already serving or queued is rejected as a duplicate).
//
// Why relays default to fan-out 1 (a chain): on a switched full-duplex LAN every port has its
// own uplink and downlink. A relay serving k downstream splits its uplink k ways, so a tree of
// fan-out k runs every hop at B/k: about k·S/B for the whole room. A chain gives every hop the
// whole port, and each PC lags its upstream by one chunk: S/B + (N-1)·δ with δ = chunk/B, which
// for N-1 < (k-1)·(S/chunk) (thousands of PCs for a GB image) beats any tree. The price: a chain
// runs at its slowest link, and a failure mid-chain sends everything below the failed relay
// back to the client queue (they keep what they verified and resume from another server).

export type ServerKind = "fake" | "server" | "relay";

export interface SchedulerConfig {
  /** Seconds a waiting batch may linger before it goes out partial (default 10). */
  linger: number;
  /** "relay": every client that gets assigned also joins the server queue at once as a relay
   *  (kind "relay", capacity relayCapacity), since it serves each chunk as soon as verified.
   *  "classic": clients become servers only when the master says so (server-ready event). */
  mode: "classic" | "relay";
  relayCapacity: number;
}

export type SchedulerEvent =
  // join tail of server queue
  | { type: "server-ready"; id: string; capacity: number; kind: ServerKind; at: number }
  // join tail of client queue
  | { type: "client-ready"; id: string; at: number }
  // client holds all chunks: its server's slot is free
  | { type: "client-received"; id: string; at: number }
  // its server failed it: back to HEAD of client queue (no client-ready needed)
  | { type: "client-failed"; id: string; at: number; reason: string }
  // session closed: out of all queues/batches at once; its batch clients go back to the head
  | { type: "leave"; id: string; at: number }
  // pause: no assignments until resume
  | { type: "pause"; at: number }
  | { type: "resume"; at: number }
  // time passes (linger)
  | { type: "tick"; at: number };

export type Decision =
  | { type: "assign"; server: string; clients: string[]; partial: boolean; at: number }
  // all clients of its batch received/failed/left: server back to TAIL of server queue
  | { type: "batch-done"; server: string; at: number }
  | { type: "requeued"; client: string; reason: string; at: number }
  // inconsistent event (unknown id, duplicate join...): state unchanged
  | { type: "rejected"; event: SchedulerEvent; reason: string };

export interface SchedulerSnapshot {
  serverQueue: { id: string; capacity: number; kind: ServerKind; since: number }[];
  /** `since`: when the client joined (kept across failures and requeues). */
  clientQueue: { id: string; since: number }[];
  /** Active batches; `clients` are the ones still receiving (at most `capacity`). */
  batches: { server: string; capacity: number; clients: string[]; since: number }[];
  /** client id -> server id it currently fetches from */
  upstream: Record<string, string>;
  paused: boolean;
}

interface ServerEntry {
  id: string;
  capacity: number;
  kind: ServerKind;
  since: number;
}

interface ClientEntry {
  id: string;
  since: number;
}

interface Batch {
  server: ServerEntry;
  /** Clients still receiving, in assignment order, each with its original `since`. */
  clients: ClientEntry[];
  since: number;
}

interface Plan {
  server: ServerEntry;
  clients: ClientEntry[];
  full: boolean;
  /** When this batch may leave partial (oldest member's since + linger). */
  deadline: number;
}

const KINDS: readonly ServerKind[] = ["fake", "server", "relay"];

export class Scheduler {
  readonly #config: SchedulerConfig;
  #servers: ServerEntry[] = [];
  #clients: ClientEntry[] = [];
  /** Active batches by server id. */
  #batches = new Map<string, Batch>();
  /** client id -> server id, exactly the clients of active batches. */
  #upstream = new Map<string, string>();
  #paused = false;

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
    this.#config = { ...config };
  }

  apply(event: SchedulerEvent): Decision[] {
    const problem = this.#check(event);
    if (problem) return [{ type: "rejected", event, reason: problem }];
    const out: Decision[] = [];
    const at = event.at;
    switch (event.type) {
      case "server-ready":
        this.#servers.push({ id: event.id, capacity: event.capacity, kind: event.kind, since: at });
        break;
      case "client-ready":
        this.#clients.push({ id: event.id, since: at });
        break;
      case "client-received":
        this.#finishClient(event.id, at, out);
        break;
      case "client-failed": {
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
    }
    if (!this.#paused) this.#assignAll(at, out);
    return out;
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
  #check(e: SchedulerEvent): string | null {
    if (typeof e.at !== "number" || !Number.isFinite(e.at)) {
      return `Invalid time "${(e as { at: unknown }).at}": must be a finite number of seconds`;
    }
    const id = (e as { id?: unknown }).id;
    if ("id" in e && (typeof id !== "string" || id === "")) {
      return `Invalid peer id "${id}": must be a non-empty string`;
    }
    switch (e.type) {
      case "server-ready":
        if (!Number.isInteger(e.capacity) || e.capacity < 1) {
          return `Invalid capacity "${e.capacity}" for server "${e.id}": must be a whole number >= 1`;
        }
        if (!KINDS.includes(e.kind)) return `Invalid server kind "${e.kind}" for "${e.id}"`;
        if (this.#servers.some((s) => s.id === e.id)) {
          return `Server "${e.id}" is already in the server queue`;
        }
        if (this.#batches.has(e.id)) return `Server "${e.id}" is already serving a batch`;
        return null;
      case "client-ready":
        if (this.#clients.some((c) => c.id === e.id)) {
          return `Client "${e.id}" is already in the client queue`;
        }
        if (this.#upstream.has(e.id)) {
          return `Client "${e.id}" is already receiving from "${this.#upstream.get(e.id)}"`;
        }
        return null;
      case "client-received":
      case "client-failed":
        return this.#upstream.has(e.id) ? null : `Client "${e.id}" is not in any batch`;
      case "leave":
        return this.#servers.some((s) => s.id === e.id) || this.#batches.has(e.id) ||
            this.#clients.some((c) => c.id === e.id) || this.#upstream.has(e.id)
          ? null
          : `Peer "${e.id}" is in no queue and no batch`;
      case "pause":
        return this.#paused ? "Already paused" : null;
      case "resume":
        return this.#paused ? null : "Not paused";
      case "tick":
        return null;
      default:
        return `Unknown event type "${(e as { type: unknown }).type}"`;
    }
  }

  /** Take a client out of its batch; emit batch-done when that empties the batch. */
  #finishClient(id: string, at: number, out: Decision[]): ClientEntry {
    const serverId = this.#upstream.get(id)!;
    this.#upstream.delete(id);
    const batch = this.#batches.get(serverId)!;
    const entry = batch.clients.find((c) => c.id === id)!;
    batch.clients = batch.clients.filter((c) => c !== entry);
    if (batch.clients.length === 0) {
      this.#batches.delete(serverId);
      this.#servers.push({ ...batch.server, since: at });
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
      for (const c of serving.clients) this.#upstream.delete(c.id);
      this.#clients.unshift(...serving.clients);
      const reason = `server "${id}" left`;
      for (const c of serving.clients) out.push({ type: "requeued", client: c.id, reason, at });
    }
    // After the requeue above: a peer cannot be in its own batch, so order does not matter.
    if (this.#upstream.has(id)) this.#finishClient(id, at, out);
  }

  #assignAll(at: number, out: Decision[]) {
    for (;;) {
      let plan: Plan | undefined;
      for (const p of this.#plans()) {
        if (p.full || at >= p.deadline) {
          plan = p;
          break;
        }
      }
      if (!plan) return;
      const { server, clients } = plan;
      this.#servers = this.#servers.filter((s) => s !== server);
      const taken = new Set(clients);
      this.#clients = this.#clients.filter((c) => !taken.has(c));
      this.#batches.set(server.id, { server, clients, since: at });
      for (const c of clients) this.#upstream.set(c.id, server.id);
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

  /**
   * The batches that could go out now, in the order they would: for each client in queue order,
   * its first allowed server (each server considered once) filled with the allowed clients.
   */
  *#plans(): Generator<Plan> {
    const ancestors = new Map<string, Set<string>>();
    const ancestorsOf = (serverId: string) => {
      let set = ancestors.get(serverId);
      if (!set) {
        set = new Set();
        // Bounded by the number of links, so a broken invariant cannot loop forever.
        for (let x = this.#upstream.get(serverId); x !== undefined && !set.has(x);) {
          set.add(x);
          x = this.#upstream.get(x);
        }
        ancestors.set(serverId, set);
      }
      return set;
    };
    const allowed = (client: string, server: string) =>
      client !== server && !ancestorsOf(server).has(client);
    const considered = new Set<ServerEntry>();
    for (let i = 0; i < this.#clients.length; i++) {
      const head = this.#clients[i];
      const server = this.#servers.find((s) => allowed(head.id, s.id));
      if (!server || considered.has(server)) continue;
      considered.add(server);
      const clients: ClientEntry[] = [];
      for (let j = i; j < this.#clients.length && clients.length < server.capacity; j++) {
        if (allowed(this.#clients[j].id, server.id)) clients.push(this.#clients[j]);
      }
      const oldest = Math.min(...clients.map((c) => c.since));
      yield {
        server,
        clients,
        full: clients.length >= server.capacity,
        deadline: oldest + this.#config.linger,
      };
    }
  }
}
