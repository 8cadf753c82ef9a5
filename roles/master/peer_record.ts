// What the master knows of one peer: its role, address, state, progress and history in this run.
// Plain data, written by the core (core.ts, decisions.ts, peer_reports.ts) and read by the
// status, metrics and history views.
import type { PeerFailure, PeerRole, PeerState } from "../protocol/mod.ts";

export interface PeerRecord {
  id: string;
  role: PeerRole;
  name: string;
  mac?: string;
  address: string;
  url?: string;
  capacity: number;
  state: PeerState;
  /** Chunks verified, and of how many. */
  held: number;
  total: number;
  bytes: number;
  rate: number;
  /** The server this client fetches from now. */
  server?: string;
  /** Every server that served this client, in order. */
  servedBy: string[];
  /** Clients this peer is serving now. */
  serving: string[];
  joinedAt: number;
  assignedAt?: number;
  receivedAt?: number;
  doneAt?: number;
  verified: boolean;
  failures: PeerFailure[];
  connected: boolean;
  /** Bytes this peer served, as its clients reported them in "progress" (for /metrics). */
  served?: number;
  /** A client's disk and why it was chosen (said in its hello, before it wrote anything). */
  disk?: string;
  diskReason?: string;
  /** How finishing its verified disk went (GPT, the group's finishing step). */
  finish?: { ok: boolean; step: string; detail: string };
  /** The switch it is on (LLDP or the topology file) and the port (LLDP). */
  switch?: string;
  switchPort?: string;
  /** Bytes/s of its probe fetch before the hello. */
  probe?: number;
  /** Why the scheduler made it a leaf (relay mode), when it did. */
  demoted?: string;
}

/** The placeholder for a PC that asked for its boot script and has not said hello yet. */
export function bootingPeer(
  mac: string,
  address: string,
  totalChunks: number,
  now: number,
): PeerRecord {
  return {
    id: mac,
    role: "client",
    name: mac,
    mac,
    address,
    capacity: 0,
    state: "booting",
    held: 0,
    total: totalChunks,
    bytes: 0,
    rate: 0,
    servedBy: [],
    serving: [],
    joinedAt: now,
    verified: false,
    failures: [],
    connected: false,
  };
}
