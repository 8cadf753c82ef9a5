// The scheduler's vocabulary: its config, the events it takes, the decisions it gives, the
// snapshot it shows, and the queue entries it keeps (scheduler.ts: the rules).
import type { AdaptConfig, DemotionReason } from "./adapt.ts";

export type ServerKind = "fake" | "server" | "relay";

export interface SchedulerConfig {
  /** Seconds a waiting batch may linger before it goes out partial (default 10). */
  linger: number;
  /** "relay": every client that gets assigned also joins the server queue at once as a relay
   *  (kind "relay", capacity relayCapacity), since it serves each chunk as soon as verified.
   *  "classic": clients become servers only when the master says so (server-ready event). */
  mode: "classic" | "relay";
  relayCapacity: number;
  /** Relay mode: demote slow and stalled PCs (default DEFAULT_ADAPT; false: never). */
  adapt?: AdaptConfig | false;
  /** A server that this many different clients report failed leaves the queue (default 3). */
  ejectAfter?: number;
}

export type SchedulerEvent =
  // join tail of server queue
  // (`switch`: the switch it is on; `rate`: its port's bytes/s, a source's chains follow from it)
  | {
    type: "server-ready";
    id: string;
    capacity: number;
    kind: ServerKind;
    at: number;
    switch?: string;
    rate?: number;
  }
  // join tail of client queue (`probe`: bytes/s of its probe fetch)
  | { type: "client-ready"; id: string; at: number; switch?: string; probe?: number }
  // a receiving client's progress: bytes received since it joined (relay mode measures hops)
  | { type: "progress"; id: string; bytes: number; at: number }
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
  | { type: "tick"; at: number }
  // PCs now report every `reportMs` (report_pace.ts): the in-run rules' thresholds follow
  | { type: "pace"; reportMs: number; at: number };

export type Decision =
  | { type: "assign"; server: string; clients: string[]; partial: boolean; at: number }
  // all clients of its batch received/failed/left: server back to TAIL of server queue
  | { type: "batch-done"; server: string; at: number }
  // a receiving client now fetches from `server` instead of `from` (a demoted relay's downstream)
  | { type: "move"; client: string; from: string; server: string; at: number }
  // the peer is a leaf from now on (adapt.ts: why)
  | { type: "demoted"; peer: string; reason: DemotionReason; detail: string; at: number }
  | { type: "requeued"; client: string; reason: string; at: number }
  // `clients` reported the server failed: it leaves the server queue for the rest of the run
  | { type: "ejected"; server: string; clients: string[]; at: number }
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
  /** Demoted PCs (relay mode): served last, serve only slower leaves. */
  leaves: string[];
  /** Each leaf's rate when it was demoted, bytes/s. */
  leafRates: Record<string, number>;
  /** Servers several clients reported failed: they serve no more in this run. */
  ejected: string[];
}

export interface ServerEntry {
  id: string;
  capacity: number;
  kind: ServerKind;
  since: number;
  /** A source's port rate (bytes/s), when it said. */
  rate?: number;
}

export interface ClientEntry {
  id: string;
  since: number;
}

export interface Batch {
  server: ServerEntry;
  /** Clients still receiving, in assignment order, each with its original `since`. */
  clients: ClientEntry[];
  since: number;
}

export interface Plan {
  server: ServerEntry;
  clients: ClientEntry[];
  full: boolean;
  /** When this batch may leave partial (oldest member's since + linger). */
  deadline: number;
  /** A client waiting out its backoff (scheduler_eject.ts): never goes out; `deadline` is
   * when the pick rules look again. */
  waiting?: true;
}
