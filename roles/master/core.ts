// The master's brain: peers, their states and the scheduler, driven by validated control
// messages. No sockets and no clock: the I/O shell (app.ts) injects `now`, `send`, `close` and
// `log`, so the whole run can be replayed in tests. This file keeps the sessions (hello,
// disconnect, end) and the run's switches; a peer's later reports are taken in peer_reports.ts,
// the scheduler's decisions carried out in decisions.ts.
import { randomBytes } from "node:crypto";
import type {
  EventRecord,
  HelloMessage,
  MasterMessage,
  PeerFailure,
  PeerMessage,
  PeerState,
  UnenrolledBoot,
} from "../protocol/mod.ts";

export type { EventRecord, PeerFailure, PeerState, UnenrolledBoot };
import type { BootDecision } from "../../netboot/mod.ts";

const MAX_UNENROLLED = 1000;
import { applyDecision, type DecisionSink } from "./decisions.ts";
import { bootingPeer, type PeerRecord } from "./peer_record.ts";
import { type ReportContext, takeReport } from "./peer_reports.ts";
import { Proofs } from "./proofs.ts";
import { BootRecords } from "./boot_records.ts";
import { Scheduler, type SchedulerEvent } from "./scheduler.ts";
import { type MasterConfig, type MasterIo, MAX_BOOTING, type SessionKey } from "./core_config.ts";
import { helloMac, helloRecord, helloRefusal, uniqueId } from "./hello.ts";
import { BASE_REPORT_MS, reportInterval } from "./report_pace.ts";
import { Departed, FullRefusals, keepRecord, MAX_PEERS, peersFull } from "./peer_bound.ts";

export { MAX_BOOTING } from "./core_config.ts";
export { sameSecret } from "./hello.ts";
export type { MasterConfig, MasterIo, Prover, SessionKey } from "./core_config.ts";

export class MasterCore {
  readonly config: MasterConfig;
  readonly peers = new Map<string, PeerRecord>();
  readonly scheduler: Scheduler;
  /** Recent events, newest last (for the status page). */
  readonly events: EventRecord[] = [];
  ended: string | null = null;
  /** Draining: no new clients are admitted (known ones may reconnect); see drain(). */
  draining = false;
  readonly startedAt: number;
  #io: MasterIo;
  #sessions = new Map<SessionKey, { address: string; peer?: string }>();
  #bySession = new Map<string, SessionKey>();
  /** Each connected peer's ticket key (its chunk server serves only tickets made with it). */
  #ticketKeys = new Map<string, string>();
  /** Netboot requests, to bind a client's hello to the boot it came from. */
  readonly #boots = new BootRecords(MAX_BOOTING);
  /** Connected peers by MAC: a session cannot take over another PC's MAC. */
  #macs = new Map<string, string>();
  #listeners = new Set<(e: EventRecord) => void>();
  /** Client records dropped when their session closed (peer_bound.ts), for a quick reconnect. */
  readonly #departed = new Departed();
  /** Hellos refused because the peer table was full (for /metrics). */
  readonly fullRefusals = new FullRefusals();
  #decisions: DecisionSink = {
    peers: this.peers,
    ticketKey: (peerId) => this.#ticketKeys.get(peerId),
    random: (bytes) => this.#random(bytes),
    send: (peerId, msg) => this.#send(peerId, msg),
    event: (event, fields) => this.#event(event, fields),
  };
  #reports: ReportContext;
  #proofs: Proofs;
  /** Milliseconds between a PC's progress reports, as told (report_pace.ts): only ever grows. */
  #reportMs = BASE_REPORT_MS;

  constructor(config: MasterConfig, io: MasterIo) {
    this.config = config;
    this.#io = io;
    this.startedAt = io.now();
    this.scheduler = new Scheduler({
      linger: config.linger,
      mode: config.mode,
      relayCapacity: config.fanout,
      ...(config.adapt !== undefined ? { adapt: config.adapt } : {}),
    });
    this.#reports = {
      mode: config.mode,
      peers: this.peers,
      event: (event, fields) => this.#event(event, fields),
      apply: (event) => this.#apply(event),
      checkExpect: () => this.#checkExpect(),
      received: (peer) => {
        const session = this.#bySession.get(peer.id);
        if (session) this.#proofs.received(session, peer);
      },
      readBackOk: (peer, seconds) => {
        const session = this.#bySession.get(peer.id);
        if (session) this.#proofs.readBackOk(session, peer, seconds);
      },
      readBackFailed: (peer) => this.#proofs.readBackFailed(peer),
    };
    this.#proofs = new Proofs({
      io,
      reports: this.#reports,
      ended: () => this.ended !== null,
      sessionOf: (peerId) => this.#bySession.get(peerId),
      reject: (session, message) => this.reject(session, message),
      event: (event, fields) => this.#event(event, fields),
      apply: (event) => this.#apply(event),
      capacity: (announced) => this.#capacity(announced),
    });
  }

  /** Subscribe to events (dashboard SSE); returns an unsubscribe function. */
  subscribe(fn: (e: EventRecord) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #event(event: string, fields: EventRecord["fields"] = {}) {
    const rec = { at: this.#io.now(), event, fields };
    this.events.push(rec);
    if (this.events.length > 500) this.events.shift();
    this.#io.log(event, fields);
    for (const fn of this.#listeners) fn(rec);
  }

  /** Record an event that happened outside the core (an admin's action, and who took it). */
  note(event: string, fields: EventRecord["fields"] = {}) {
    this.#event(event, fields);
  }

  connect(session: SessionKey, address: string) {
    this.#sessions.set(session, { address });
  }

  /** A message failed validation: answer with an error and close that session only. */
  reject(session: SessionKey, message: string) {
    const s = this.#sessions.get(session);
    this.#event("protocol-error", { peer: s?.peer, address: s?.address, error: message });
    this.#io.send(session, { type: "error", message });
    this.#io.close(session, 1008, message.slice(0, 120));
  }

  message(session: SessionKey, msg: PeerMessage) {
    const s = this.#sessions.get(session);
    if (!s) return;
    // A PC that served until the end finishes its disk after it: its result still counts.
    if (this.ended && !(msg.type === "finished" && s.peer)) {
      this.#io.send(session, { type: "end", reason: this.ended });
      return;
    }
    if (msg.type === "hello") {
      if (s.peer) {
        return this.reject(session, 'Unexpected "hello": this session already said hello');
      }
      return this.#hello(session, s.address, msg);
    }
    const peer = s.peer ? this.peers.get(s.peer) : undefined;
    if (!peer) return this.reject(session, `Unexpected "${msg.type}" before "hello"`);
    if (msg.type === "proof") return this.#proofs.proof(session, peer, msg.sha256);
    const error = takeReport(peer, msg, this.#io.now(), this.#reports);
    if (error) this.reject(session, error);
  }

  #hello(session: SessionKey, address: string, msg: HelloMessage) {
    const { config } = this;
    // A PC booted from this master holds no secret (DESIGN.md "Trust"): only standalone servers
    // present a credential, the server token, which is not the admin token.
    const known = (name: string) => this.peers.has(name) || this.#departed.get(name) !== undefined;
    const refusal = helloRefusal(msg, config, this.draining, known);
    if (refusal) return this.reject(session, refusal);
    const now = this.#io.now();
    const claim = helloMac(
      msg,
      address,
      this.#boots,
      (mac) => this.peers.get(this.#macs.get(mac) ?? ""),
    );
    if ("error" in claim) return this.reject(session, claim.error);
    const { mac, bound, holder } = claim;
    const record = (id: string) => this.peers.get(id) ?? this.#departed.get(id);
    // The hello of a PC that booted from here takes its booting placeholder's place.
    const replacesBoot = !!mac && this.peers.get(mac)?.state === "booting";
    // Full: only a hello that adds no record (its own, or the booting placeholder it replaces).
    const max = config.maxPeers ?? MAX_PEERS;
    const full = this.peers.size >= max && !replacesBoot &&
      !this.peers.has(uniqueId(record, msg.name, address, mac));
    if (full) return this.#full(session, max);
    if (holder) holder.mac = undefined; // an unbound claim gives way to the PC that booted
    if (replacesBoot) this.peers.delete(mac!);
    const id = uniqueId(record, msg.name, address, mac);
    const host = address.includes(":") ? `[${address}]` : address;
    const url = msg.url ?? (msg.port ? `http://${host}:${msg.port}` : undefined);
    // A client that says it holds the whole image proves it first (see #challenge); servers
    // registered with the server token are believed (their clients verify every chunk).
    const complete = msg.role !== "client";
    const claimsComplete = msg.role === "client" && msg.complete;
    const previous = this.peers.get(id) ?? this.#departed.take(id, address, mac);
    // The switch the PC heard (LLDP) beats the admin's file, which beats nothing.
    const sw = msg.switch ?? config.topology?.switchOf({ mac, address });
    const peer = helloRecord(msg, config.totalChunks, {
      id,
      mac,
      address,
      url,
      complete,
      claimsComplete,
      previous,
      sw,
      now,
    });
    this.peers.set(id, peer);
    if (mac) this.#macs.set(mac, id);
    if (bound) peer.macBound = true;
    const s = this.#sessions.get(session)!;
    s.peer = id;
    this.#bySession.set(id, session);
    const ticketKey = this.#random(32);
    this.#ticketKeys.set(id, ticketKey);
    this.#pace(session, now);
    this.#io.send(session, {
      type: "welcome",
      id,
      mode: config.mode,
      imageId: config.imageId,
      address,
      ticketKey,
      progressMs: this.#reportMs,
    });
    this.#event("join", {
      peer: id,
      role: msg.role,
      address,
      url,
      held: peer.held,
      complete: complete || claimsComplete,
      ...(peer.disk ? { disk: peer.disk } : {}),
      ...(mac && !bound ? { macBound: false } : {}),
    });
    // Which disk the PC will write, and why, before it writes (the dashboard's event list).
    if (msg.disk) this.#event("disk", { peer: id, disk: msg.disk, reason: msg.diskReason });
    if (claimsComplete) {
      // It serves once it proves it; it counts as verified only if this run verified it or
      // assigned it (a PC whose session was lost between its last chunk and its proof comes
      // back from its own address and MAC, uniqueId, holding the whole image).
      return this.#proofs.challenge(
        session,
        peer,
        peer.verified || peer.assignedAt !== undefined,
        0,
      );
    }
    if (complete) {
      // A source that says its port rate feeds as many chains as it carries (the scheduler
      // counts them from the PCs' probes), up to what it announced.
      const rated = config.mode === "relay" && msg.portRate !== undefined;
      this.#apply({
        type: "server-ready",
        id,
        capacity: rated ? msg.capacity : this.#capacity(msg.capacity),
        kind: msg.role === "fake" ? "fake" : "server",
        at: now,
        ...(sw !== undefined ? { switch: sw } : {}),
        ...(rated ? { rate: msg.portRate } : {}),
      });
    } else {
      this.#apply({
        type: "client-ready",
        id,
        at: now,
        ...(sw !== undefined ? { switch: sw } : {}),
        ...(msg.probe !== undefined ? { probe: msg.probe } : {}),
      });
    }
    this.#checkExpect();
  }

  /** The room grew past a step: every other PC hears the longer interval now (the new one in its
   * welcome), and the scheduler's thresholds follow. A few times a run, so O(PCs) each is fine. */
  #pace(joined: SessionKey, now: number) {
    const ms = reportInterval(this.#bySession.size);
    if (ms <= this.#reportMs) return;
    this.#reportMs = ms;
    for (const session of this.#bySession.values()) {
      if (session !== joined) this.#io.send(session, { type: "pace", progressMs: ms });
    }
    this.#apply({ type: "pace", reportMs: ms, at: now });
    this.#event("pace", { progressMs: ms, pcs: this.#bySession.size });
  }

  /** Milliseconds between progress reports the PCs were told (status, tests). */
  get reportMs(): number {
    return this.#reportMs;
  }

  /** Refused for a full table: the peer is told, the log hears once a minute (not per try). */
  #full(session: SessionKey, max: number) {
    const message = peersFull(max);
    this.#io.send(session, { type: "error", message });
    this.#io.close(session, 1008, message.slice(0, 120));
    const n = this.fullRefusals.refused(this.#io.now());
    if (n !== null) this.#event("peers-full", { max, refused: n });
  }

  /** In relay mode every server's fan-out is capped (a chain uses each port fully). */
  #capacity(announced: number) {
    return this.config.mode === "relay" ? Math.min(announced, this.config.fanout) : announced;
  }

  /** Resolves once every proof check in flight has been decided (for tests). */
  settled(): Promise<void> {
    return this.#proofs.settled();
  }

  #checkExpect() {
    const { expect } = this.config;
    if (expect === undefined || this.ended) return;
    const done = [...this.peers.values()].filter((p) => p.role === "client" && p.verified).length;
    if (done >= expect) this.end(`all ${expect} expected PCs verified`);
  }

  disconnect(session: SessionKey) {
    const s = this.#sessions.get(session);
    this.#sessions.delete(session);
    if (!s?.peer) return;
    if (this.#bySession.get(s.peer) !== session) return;
    this.#bySession.delete(s.peer);
    this.#ticketKeys.delete(s.peer);
    this.#proofs.forget(s.peer);
    const peer = this.peers.get(s.peer);
    if (!peer) return;
    if (peer.mac && this.#macs.get(peer.mac) === peer.id) this.#macs.delete(peer.mac);
    peer.connected = false;
    if (this.ended) return;
    const was = peer.state;
    // A verified PC that leaves (its after action is reboot or poweroff) is done, not lost.
    if (peer.role === "client" && peer.verified) peer.state = "done";
    else if (peer.state === "failed") { /* its disk or its finishing step failed: it stays so */ }
    else if (peer.role === "client" || peer.state === "serving") peer.state = "left";
    this.#event("leave", { peer: peer.id, was });
    // A PC whose disk failed left the queues at its report already.
    if (this.scheduler.knows(peer.id)) {
      this.#apply({ type: "leave", id: peer.id, at: this.#io.now() });
    }
    // Last, once the leave was recorded (history_record.ts reads the record at "leave").
    if (!keepRecord(peer) && this.peers.get(peer.id) === peer && !peer.connected) {
      this.peers.delete(peer.id);
      this.#departed.put(peer);
    }
  }

  tick() {
    if (!this.ended) this.#apply({ type: "tick", at: this.#io.now() });
  }

  pause(paused: boolean) {
    this.#apply({ type: paused ? "pause" : "resume", at: this.#io.now() });
    this.#event(paused ? "paused" : "resumed");
  }

  /** Drain: refuse hellos from clients this run has not seen (servers are still welcome). */
  drain(on: boolean) {
    this.draining = on;
    this.#event(on ? "draining" : "admitting");
  }

  /** PCs that network-booted but are not enrolled (bounded: strangers must not grow it). */
  readonly unenrolled = new Map<string, UnenrolledBoot>();

  /**
   * Netboot: a PC asked for its boot script and got this answer. "image": shown as booting
   * until its hello; "local" because not enrolled: listed apart; every answer is an event.
   */
  bootAnswered(mac: string, address: string, d: BootDecision) {
    const answer = d.action === "image" ? "image" : `local:${d.reason}`;
    this.#event("boot", {
      peer: mac,
      address,
      answer,
      ...(d.action === "image" && d.group ? { group: d.group } : {}),
    });
    if (d.action === "image") {
      this.unenrolled.delete(mac);
      this.booting(mac, address);
      return;
    }
    if (d.reason !== "not-enrolled") return;
    const now = this.#io.now();
    const seen = this.unenrolled.get(mac);
    if (seen) Object.assign(seen, { address, lastAt: now, boots: seen.boots + 1 });
    else if (this.unenrolled.size < MAX_UNENROLLED) {
      this.unenrolled.set(mac, { mac, address, firstAt: now, lastAt: now, boots: 1 });
    }
  }

  /** Netboot: a PC asked for its boot script. Shown as "booting" until its hello. */
  booting(mac: string, address: string) {
    if (this.#macs.has(mac) || this.ended) return;
    const now = this.#io.now();
    for (const gone of this.#boots.record(mac, address, now)) {
      if (this.peers.get(gone)?.state === "booting") this.peers.delete(gone);
    }
    this.peers.set(mac, bootingPeer(mac, address, this.config.totalChunks, now));
    this.#event("booting", { peer: mac, address });
  }

  end(reason: string) {
    if (this.ended) return;
    this.ended = reason;
    for (const p of this.peers.values()) {
      if (p.connected && (p.state === "serving" || p.verified)) p.state = "done";
    }
    this.#event("end", { reason });
    for (const session of this.#bySession.values()) this.#io.send(session, { type: "end", reason });
    for (const [session, s] of this.#sessions) {
      if (!s.peer) this.#io.send(session, { type: "end", reason });
    }
    this.#io.onEnd?.(reason);
  }

  #apply(event: SchedulerEvent) {
    for (const d of this.scheduler.apply(event)) applyDecision(d, this.#decisions);
  }

  #random(bytes: number): string {
    return this.#io.random?.(bytes) ?? randomBytes(bytes).toString("hex");
  }

  #send(peerId: string, msg: MasterMessage) {
    const session = this.#bySession.get(peerId);
    if (session) this.#io.send(session, msg);
  }

  /** Earliest time the shell should call tick(), or null. */
  nextDeadline(): number | null {
    return this.scheduler.nextDeadline();
  }
}
