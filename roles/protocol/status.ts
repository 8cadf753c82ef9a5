// The run's status as the master publishes it (GET /api/v1/status, the events stream, the
// dashboard): the JSON shapes only. The master computes them (roles/master), the dashboard
// renders them (roles/master/dashboard), so neither needs the other's code.
import type { PeerRole } from "./control.ts";

export type PeerState =
  /** Netboot: asked for its boot script, has not said hello yet. */
  | "booting"
  | "waiting"
  | "receiving"
  | "verifying"
  | "serving"
  | "done"
  | "failed"
  | "left";

export interface PeerFailure {
  at: number;
  reason: string;
  detail: string;
  server?: string;
}

export interface EventRecord {
  at: number;
  event: string;
  fields: Record<string, string | number | boolean | undefined>;
}

export interface PeerStatus {
  id: string;
  role: PeerRole;
  name: string;
  mac?: string;
  address: string;
  url?: string;
  state: PeerState;
  held: number;
  total: number;
  progress: number;
  bytes: number;
  rate: number;
  eta: number | null;
  server?: string;
  servedBy: string[];
  serving: string[];
  verified: boolean;
  /** A client's disk and why its target rule chose it (said before anything was written). */
  disk?: string;
  diskReason?: string;
  /** How finishing its verified disk went: the GPT move, then the group's finishing step. */
  finish?: { ok: boolean; step: string; detail: string };
  joinedAt: number;
  doneAt?: number;
  seconds: number | null;
  failures: PeerFailure[];
  connected: boolean;
}

/** A PC that network-booted but is not enrolled: it was told to boot its own disk. */
export interface UnenrolledBoot {
  mac: string;
  address: string;
  /** Seconds on the master's clock: first and last boot request. */
  firstAt: number;
  lastAt: number;
  boots: number;
}

export interface RunStatus {
  imageId: string;
  image: { name: string; size: number; chunkSize: number; chunks: number };
  mode: string;
  startedAt: number;
  now: number;
  ended: string | null;
  paused: boolean;
  totals: {
    clients: number;
    booting: number;
    verified: number;
    receiving: number;
    waiting: number;
    failed: number;
    servers: number;
    bytesReceived: number;
  };
  queues: {
    servers: { id: string; capacity: number; kind: string; since: number }[];
    clients: { id: string; since: number }[];
  };
  peers: PeerStatus[];
  /** PCs that booted from the network but are not enrolled (they boot their own disk). */
  unenrolled: UnenrolledBoot[];
}

export interface LivePeer extends PeerStatus {
  /** Bytes this peer served, as its clients reported them. */
  served: number;
}

export interface LiveStatus extends RunStatus {
  peers: LivePeer[];
  draining: boolean;
  /** The run ends once this many clients have verified (null: ends by hand). */
  expect: number | null;
  /** Seconds until every known client is imaged, estimated (null: unknown or nothing left). */
  eta: number | null;
  /** The latest events, oldest first. */
  recent: EventRecord[];
}
