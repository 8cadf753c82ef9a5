// What a peer reports after its hello ("progress", "received", "verified", "failed",
// "finished"), checked
// against what the master knows of it and folded into its record. A report that does not fit
// the peer's state is refused with a message (the core closes that session only); one that fits
// may move the peer on in the scheduler.
import type { EventRecord, Mode, PeerMessage } from "../protocol/mod.ts";
import { failureReason, type PeerRecord, recordFailure } from "./peer_record.ts";
import type { SchedulerEvent } from "./scheduler.ts";

/** Everything but "hello" and "proof", which the core handles (they need the session). */
export type PeerReport = Exclude<PeerMessage, { type: "hello" } | { type: "proof" }>;

export interface ReportContext {
  mode: Mode;
  peers: Map<string, PeerRecord>;
  event(event: string, fields?: EventRecord["fields"]): void;
  apply(event: SchedulerEvent): void;
  /** A client verified its disk: the core checks whether the run has its expected PCs. */
  checkExpect(): void;
  /** A client received every chunk: the core challenges it during its read-back (proofs.ts). */
  received(peer: PeerRecord): void;
  /** A client says its disk is good: it counts once it proved it (proofs.ts). */
  readBackOk(peer: PeerRecord, readbackSeconds: number): void;
  /** A client's read-back failed: a challenge out is void. */
  readBackFailed(peer: PeerRecord): void;
}

/** Take one report from `peer`; returns the message to refuse it with, or undefined. */
export function takeReport(
  peer: PeerRecord,
  msg: PeerReport,
  now: number,
  ctx: ReportContext,
): string | undefined {
  switch (msg.type) {
    case "progress":
      if (msg.held > peer.total) {
        return `Invalid "progress": held ${msg.held} > ${peer.total} chunks`;
      }
      peer.held = msg.held;
      if (peer.server && msg.bytes > peer.bytes) {
        const server = ctx.peers.get(peer.server);
        if (server) server.served = (server.served ?? 0) + msg.bytes - peer.bytes;
      }
      peer.bytes = msg.bytes;
      peer.rate = msg.rate;
      // Relay mode measures every hop from these (adapt.ts).
      if (ctx.mode === "relay" && peer.state === "receiving" && peer.server) {
        ctx.apply({ type: "progress", id: peer.id, bytes: msg.bytes, at: now });
      }
      return;
    case "received": {
      // A waiting client this run assigned was requeued (demoted, or its server moved on) while
      // its fetch from the server it had went on to the end: its bytes are as good (it proves
      // them like any other), and refusing them left a finished PC that could never count.
      const requeued = peer.state === "waiting" && peer.assignedAt !== undefined;
      if (peer.role !== "client" || (peer.state !== "receiving" && !requeued)) {
        return `Unexpected "received" from ${peer.state} peer "${peer.id}"`;
      }
      peer.state = "verifying";
      peer.held = peer.total;
      peer.receivedAt = now;
      peer.server = undefined;
      ctx.event("received", { peer: peer.id, seconds: round(now - (peer.assignedAt ?? now)) });
      ctx.apply({ type: "client-received", id: peer.id, at: now });
      ctx.received(peer);
      return;
    }
    case "verified":
      if (peer.role !== "client" || peer.state !== "verifying") {
        return `Unexpected "verified" from ${peer.state} peer "${peer.id}"`;
      }
      // Nothing on faith: it counts once it has proved it holds the image.
      if (msg.ok) {
        ctx.readBackOk(peer, msg.seconds);
        return;
      }
      ctx.readBackFailed(peer);
      peer.state = "waiting";
      peer.held = Math.max(0, peer.total - msg.bad.length);
      recordFailure(peer, {
        at: now,
        reason: "read-back",
        detail: `${msg.bad.length} chunk(s) failed the read-back check: ${
          msg.bad.slice(0, 10).join(", ")
        }`,
      });
      ctx.event("verify-failed", { peer: peer.id, bad: msg.bad.length });
      ctx.apply({ type: "client-ready", id: peer.id, at: now });
      return;
    case "failed": {
      if (peer.role !== "client" || peer.verified) {
        return `Unexpected "failed" from ${peer.state} peer "${peer.id}"`;
      }
      const why = failureReason(msg.reason);
      recordFailure(peer, {
        at: now,
        reason: why,
        detail: msg.detail,
        server: msg.server,
      });
      if (msg.reason === "disk") {
        // The PC's own disk failed: not its server's fault, and no new assignment. It leaves
        // the queues now (its server's slot frees; one still queued, e.g. failed in its zero
        // fill, is not assigned later), hangs up and comes back after its backoff, or stops.
        peer.state = "failed";
        peer.server = undefined;
        ctx.apply({ type: "leave", id: peer.id, at: now });
        ctx.event("client-failed", {
          peer: peer.id,
          server: msg.server,
          reason: msg.reason,
          detail: msg.detail,
        });
        return;
      }
      // Stale: the master already moved this client on (its server left), so only record it.
      if (peer.state !== "receiving" || peer.server !== msg.server) {
        ctx.event("client-failed", { peer: peer.id, server: msg.server, reason: why });
        return;
      }
      peer.state = "waiting";
      peer.server = undefined;
      ctx.event("client-failed", {
        peer: peer.id,
        server: msg.server,
        reason: why,
      });
      ctx.apply({ type: "client-failed", id: peer.id, at: now, reason: why });
      return;
    }
    case "finished": {
      if (peer.role !== "client" || !peer.verified) {
        return `Unexpected "finished" from ${peer.state} peer "${peer.id}"`;
      }
      peer.finish = { ok: msg.ok, step: msg.step, detail: msg.detail };
      ctx.event("finish", { peer: peer.id, ok: msg.ok, step: msg.step, detail: msg.detail });
      if (!msg.ok) {
        // A disk that failed its finishing step is not done: imaged again at its next boot.
        peer.failures.push({ at: now, reason: "finish", detail: msg.detail });
        peer.verified = false;
        peer.state = "failed";
      }
      return;
    }
  }
}

/** A client proved it holds the image this run gave it: it counts as verified. */
export function verified(
  peer: PeerRecord,
  now: number,
  seconds: number,
  ctx: Omit<ReportContext, "challenge">,
) {
  peer.verified = true;
  peer.doneAt = now;
  peer.state = "serving";
  ctx.event("verified", {
    peer: peer.id,
    seconds: round(now - peer.joinedAt),
    readback: round(seconds),
    servedBy: peer.servedBy.join(","),
  });
  // Classic: only now does the PC serve. Relay: it has been in the server queue all along.
  if (ctx.mode === "classic") {
    ctx.apply({
      type: "server-ready",
      id: peer.id,
      capacity: peer.capacity,
      kind: "server",
      at: now,
    });
  }
  ctx.checkExpect();
}

function round(n: number) {
  return Math.round(n * 100) / 100;
}
