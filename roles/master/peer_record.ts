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
  /** Its MAC came from its own boot request (same MAC, same address): only then is the MAC
   * recorded as imaged. A MAC a hello merely names is shown, not trusted. */
  macBound?: boolean;
  /** Every failure ever recorded (`failures` keeps only the last MAX_FAILURES_KEPT). */
  failureCount?: number;
}

/** Failures kept per peer (the count goes on): what the status and dashboards carry. */
export const MAX_FAILURES_KEPT = 10;
/** Characters of a failure's detail kept. */
export const MAX_FAILURE_DETAIL = 200;
/** Reasons a client may give for a failure; anything else is recorded as "other", so that a
 * stranger cannot grow the metrics by one series per made-up reason. */
export const FAILURE_REASONS = [
  "server-gone",
  "bad-chunk",
  "timeout",
  "too-slow",
  "wrong-image",
  "write-failed",
  "disk",
  "http-400",
  "http-401",
  "http-403",
  "http-404",
  "http-500",
  "http-503",
  "read-back",
  "proof",
  "error",
  "other",
] as const;

export function failureReason(reason: string): string {
  return (FAILURE_REASONS as readonly string[]).includes(reason) ? reason : "other";
}

/** Keep a peer's recent failures only (a peer may report thousands), and count them all. */
export function recordFailure(peer: PeerRecord, f: PeerFailure) {
  peer.failures.push({ ...f, detail: f.detail.slice(0, MAX_FAILURE_DETAIL) });
  if (peer.failures.length > MAX_FAILURES_KEPT) peer.failures.shift();
  peer.failureCount = (peer.failureCount ?? 0) + 1;
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
