// What the master's core is given: its config, the I/O shell it calls (clock, sends, closes,
// log, the prover), and the session key the shell passes (core.ts: what it does with them).
import type { Logger } from "../../imagetools/kit/mod.ts";
import type { MasterMessage, Mode } from "../protocol/mod.ts";
import type { AdaptConfig } from "./adapt.ts";
import type { Topology } from "./topology.ts";

export interface MasterConfig {
  mode: Mode;
  linger: number;
  /** Relay mode: clients per relay (and per server). See scheduler.ts for why 1. */
  fanout: number;
  imageId: string;
  totalChunks: number;
  imageBytes: number;
  /** End the run once this many clients have verified their disks. */
  expect?: number;
  /** Admin credential (admin actions over HTTP only; no peer ever needs it). */
  token?: string;
  /** Server credential: a "server" or "fake" hello must carry it (absent: servers are open). */
  serverToken?: string;
  /** The admin's topology file: the switch of PCs that do not say (LLDP) themselves. */
  topology?: Topology;
  /** Relay mode: demoting slow and stalled PCs (scheduler default; false: never). */
  adapt?: AdaptConfig | false;
  /** Peer records held at most; a hello that would add one more is refused (peer_bound.ts,
   * default MAX_PEERS: 4 x MAX_BOOTING). */
  maxPeers?: number;
}

export interface MasterIo {
  now(): number;
  send(session: SessionKey, msg: MasterMessage): void;
  close(session: SessionKey, code: number, reason: string): void;
  log: Logger;
  /** Called once when the run ends (expect reached or end() called). */
  onEnd?(reason: string): void;
  /** `bytes` random bytes as hex (ticket keys and nonces); default node:crypto. */
  random?(bytes: number): string;
  /** Checks that a PC holds the image (a challenge over chunks); see Prover. */
  prover: Prover;
}

/** The master's side of the proof that a PC holds the image (roles/protocol/proof.ts). */
export interface Prover {
  /** A fresh challenge: a nonce and a few chunks, picked at random. */
  challenge(): { nonce: string; chunks: number[] };
  /** The right answer, from the master's own copy of those chunks (a string: decided now). */
  expected(nonce: string, chunks: readonly number[]): string | Promise<string>;
}

/** Boot requests remembered (any host can ask with any MAC, so bounded; see BootRecords). */
export const MAX_BOOTING = 1024;

export interface Challenge {
  session: SessionKey;
  nonce: string;
  chunks: number[];
  /** Counts as verified on success (this run imaged it, or verified it already). */
  counts: boolean;
  readbackSeconds: number;
  /** Sent at "received", before the read-back (proofs.ts says why). */
  early?: boolean;
  /** Its answer came (one per challenge). */
  answered?: boolean;
  /** Its answer was right (early: it counts once the read-back is in too). */
  right?: boolean;
  /** The read-back found the disk good ("verified" came). */
  readBack?: boolean;
  /** Its read-back failed: the answer, when it comes, is dropped. */
  void?: boolean;
  /** Void, and a later read-back was good (its seconds): challenge again once the answer came. */
  then?: number;
}

/** Opaque per-connection key: the shell passes whatever identifies a WebSocket. */
export type SessionKey = object;
