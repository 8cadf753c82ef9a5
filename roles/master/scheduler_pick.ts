// The scheduler's pick rules: which batches could go out now, and how many chains a source
// feeds. Pure: it reads the queues, links, leaves, switches and probes the Scheduler keeps and
// changes nothing (scheduler.ts says why these rules).
import type { ClientEntry, Plan, ServerEntry } from "./scheduler_types.ts";

/** What the pick rules read of the Scheduler's state. */
export interface PickState {
  mode: "classic" | "relay";
  linger: number;
  servers: readonly ServerEntry[];
  clients: readonly ClientEntry[];
  /** The clients a server serves now (its batch). */
  downstream: (server: string) => readonly { id: string }[];
  leaves: ReadonlySet<string>;
  /** Each leaf's rate when it was demoted, bytes/s. */
  leafRate: ReadonlyMap<string, number>;
  switchOf: ReadonlyMap<string, string>;
  probes: ReadonlyMap<string, number>;
  /** Now (seconds): the backoffs below are measured against it. */
  at: number;
  /** When this client may be given this server again after failing with it (a backoff,
   * scheduler_eject.ts), or null: it never failed there. */
  retryAt: (client: string, server: string) => number | null;
}

/** Chains a server feeds at once: a source with a port rate feeds as many as it can. */
export function capacityOf(s: PickState, server: ServerEntry): number {
  if (s.mode !== "relay" || server.rate === undefined || server.kind === "relay") {
    return server.capacity;
  }
  const probes = [...s.probes].filter(([id]) => !s.leaves.has(id)).map(([, r]) => r)
    .sort((a, b) => a - b);
  if (probes.length === 0) return 1;
  const typical = probes[Math.floor(probes.length / 2)];
  return Math.max(1, Math.min(server.capacity, Math.floor(server.rate / typical)));
}

/**
 * The batches that could go out now, in the order they would: for each client in queue order,
 * its first allowed server (each server considered once) filled with the allowed clients.
 */
export function* plans(s: PickState): Generator<Plan> {
  // The PCs downstream of a client (a server there would make a cycle), walked down from the
  // client: a waiting client seldom serves anyone, while walking up from each server took the
  // tail of a chain of 1,500 through 1,500 links on every event of a join.
  const below = new Map<string, Set<string>>();
  const belowOf = (client: string) => {
    let set = below.get(client);
    if (!set) {
      set = new Set();
      // Each PC once, so a broken invariant cannot loop forever.
      for (const todo = [client]; todo.length;) {
        for (const c of s.downstream(todo.pop()!)) {
          if (!set.has(c.id)) set.add(c.id), todo.push(c.id);
        }
      }
      below.set(client, set);
    }
    return set;
  };
  // A leaf serves only leaves, and only those no faster than itself.
  const rate = (id: string) => s.leafRate.get(id) ?? 0;
  const allowed = (client: string, server: string) =>
    client !== server && !belowOf(client).has(server) &&
    (!s.leaves.has(server) || (s.leaves.has(client) && rate(client) <= rate(server)));
  const sw = (id: string) => s.switchOf.get(id);
  const leaf = (c: ClientEntry) => s.leaves.has(c.id);
  // Leaves after every other waiting client, so they never take a slot a relay could use; the
  // faster leaves first, so a slower one ends below them (sort is stable: queue order on ties).
  const order = [
    ...s.clients.filter((c) => !leaf(c)),
    ...s.clients.filter(leaf).sort((a, b) => rate(b.id) - rate(a.id)),
  ];
  // A server a client failed with is not its server again until its backoff is over.
  const cooling = (client: string, server: string) =>
    (s.retryAt(client, server) ?? -Infinity) > s.at;
  const considered = new Set<ServerEntry>();
  for (let i = 0; i < order.length; i++) {
    const head = order[i];
    const allowedServers = s.servers.filter((s) => allowed(head.id, s.id));
    // A server it failed with comes last, and only once its backoff is over: it goes
    // elsewhere when it can, and does not go straight back to a rogue when it cannot.
    const fresh = allowedServers.filter((x) => s.retryAt(head.id, x.id) === null);
    const pool = fresh.length > 0 ? fresh : allowedServers.filter((x) => !cooling(head.id, x.id));
    const server = pool.find((s) => sw(s.id) === sw(head.id)) ?? pool[0];
    if (!server && allowedServers.length > 0) {
      // Every server it may have is in its backoff: a plan that is never ready, whose
      // deadline (the backoff's end, or its linger's when later) says when to look again.
      const ends = Math.min(...allowedServers.map((x) => s.retryAt(head.id, x.id)!));
      const wait = allowedServers.find((x) => s.retryAt(head.id, x.id) === ends)!;
      yield {
        server: wait,
        clients: [head],
        full: false,
        deadline: Math.max(ends, head.since + s.linger),
        waiting: true,
      };
      continue;
    }
    if (!server || considered.has(server)) continue;
    considered.add(server);
    const capacity = capacityOf(s, server);
    const rank = (c: ClientEntry) => (leaf(c) ? 2 : 0) + (sw(c.id) === sw(server.id) ? 0 : 1);
    const clients = order.slice(i).filter((c) => allowed(c.id, server.id))
      .filter((c) => !cooling(c.id, server.id))
      .map((c, k) => ({ c, k })).sort((a, b) => rank(a.c) - rank(b.c) || a.k - b.k)
      .slice(0, capacity).map(({ c }) => c);
    const oldest = Math.min(...clients.map((c) => c.since));
    yield {
      server,
      clients,
      full: clients.length >= capacity,
      deadline: oldest + s.linger,
    };
  }
}
