// The control protocol between peers and the master: JSON over one WebSocket per peer. This
// file is its messages, both ways; every inbound message is checked in control_parse.ts, so the
// master's session code only ever sees well-formed messages.
export const PROTOCOL_VERSION = 1;
/** Control messages are small; anything bigger is refused before JSON.parse. */
export const MAX_MESSAGE_BYTES = 16 * 1024;

export type PeerRole = "client" | "server" | "fake";
export type Mode = "classic" | "relay";
export type { AfterAction } from "../../netboot/mod.ts";

// ---- peer -> master -------------------------------------------------------------------------

export interface HelloMessage {
  type: "hello";
  version: number;
  role: PeerRole;
  /** Human name (hostname, MAC); the master derives the peer id from it. */
  name: string;
  mac?: string;
  imageId: string;
  /** Port of the peer's chunk server; the master pairs it with the address it sees. */
  port?: number;
  /** Full data URL, when the peer knows better than the master what others should dial. */
  url?: string;
  /** How many clients this peer serves at once once it serves. */
  capacity: number;
  /** Chunks already verified (resume after a reconnect or a reboot). */
  held: number;
  /** True when the peer holds and has verified the whole image (a server, or a finished client). */
  complete: boolean;
  token?: string;
  /** The switch this peer's cable ends in, and the port, as LLDP named them. */
  switch?: string;
  switchPort?: string;
  /** Bytes/s this peer fetched the master's probe at (GET /api/v1/probe, before hello). */
  probe?: number;
  /** A source's own port rate, bytes/s: it feeds as many chains as that carries. */
  portRate?: number;
  /** A client's disk (device path) and why it was chosen (its target rule), before writing. */
  disk?: string;
  diskReason?: string;
}

export interface ProgressMessage {
  type: "progress";
  held: number;
  bytes: number;
  /** Bytes per second over the last interval. */
  rate: number;
}

/** The client holds every chunk: its server's slot is free. Read-back comes next. */
export interface ReceivedMessage {
  type: "received";
}

export interface VerifiedMessage {
  type: "verified";
  ok: boolean;
  /** Chunks that failed the read-back check (when not ok). */
  bad: number[];
  seconds: number;
}

export interface FailedMessage {
  type: "failed";
  /** The server that failed this client; none when the PC's disk failed before any server
   * (opening it, the zero fill, the resume scan). */
  server?: string;
  reason: string;
  detail: string;
}

/** A client finished its verified disk (GPT moved, the group's finishing step): how it went. */
export interface FinishedMessage {
  type: "finished";
  ok: boolean;
  /** "gpt", "fetch" or the finishing step's name. */
  step: string;
  detail: string;
}

/** The answer to a "challenge": proofOf(nonce, the named chunks as this peer holds them). */
export interface ProofMessage {
  type: "proof";
  sha256: string;
}

export type PeerMessage =
  | FinishedMessage
  | HelloMessage
  | ProofMessage
  | ProgressMessage
  | ReceivedMessage
  | VerifiedMessage
  | FailedMessage;

// ---- master -> peer -------------------------------------------------------------------------

export interface WelcomeMessage {
  type: "welcome";
  id: string;
  mode: Mode;
  imageId: string;
  /** The address the master sees for this peer (what others will dial). */
  address: string;
  /** Key of this peer's chunk server for this session: it serves only tickets made with it. */
  ticketKey: string;
  /** Milliseconds between progress reports (a big room reports less often; masters from
   * before it leave it out: the client's default). */
  progressMs?: number;
}
/** The room grew: report progress every `progressMs` from now on (a client from before it logs
 * an unknown message and keeps its own; the master's stall rule allows for that). */
export interface PaceMessage {
  type: "pace";
  progressMs: number;
}
export interface AssignMessage {
  type: "assign";
  server: { id: string; url: string };
  /** Good for fetching from that server, from this client's address, in this run. */
  ticket: string;
}
export interface ServeMessage {
  type: "serve";
  clients: string[];
}
/** Prove you hold the image: answer "proof" with proofOf(nonce, these chunks). */
export interface ChallengeMessage {
  type: "challenge";
  nonce: string;
  chunks: number[];
}
/** The proof was right; `counted`: this PC counts as verified (this run imaged it). */
export interface ProvedMessage {
  type: "proved";
  counted: boolean;
}
export interface EndMessage {
  type: "end";
  reason: string;
}
export interface ErrorMessage {
  type: "error";
  message: string;
}
export type MasterMessage =
  | WelcomeMessage
  | AssignMessage
  | ServeMessage
  | PaceMessage
  | ChallengeMessage
  | ProvedMessage
  | EndMessage
  | ErrorMessage;
