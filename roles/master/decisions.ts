// The scheduler's decisions, carried out on the peer records: who serves whom now, who waits
// again, and the message each peer is sent. The scheduler decides; this applies, nothing more.
import { type EventRecord, issueTicket, type MasterMessage } from "../protocol/mod.ts";
import type { PeerRecord } from "./peer_record.ts";
import type { Decision } from "./scheduler.ts";

/** What applying a decision may touch: the records, a peer's session, the event log. */
export interface DecisionSink {
  peers: Map<string, PeerRecord>;
  /** The connected peer's ticket key (its chunk server serves only tickets made with it). */
  ticketKey(peerId: string): string | undefined;
  /** `bytes` random bytes as hex (ticket nonces). */
  random(bytes: number): string;
  send(peerId: string, msg: MasterMessage): void;
  event(event: string, fields?: EventRecord["fields"]): void;
}

export function applyDecision(d: Decision, sink: DecisionSink) {
  switch (d.type) {
    case "assign": {
      const server = sink.peers.get(d.server);
      const key = sink.ticketKey(d.server);
      if (!server?.url || !key) return; // cannot happen: servers join with a URL, connected
      server.serving = [...d.clients];
      if (server.role === "client" && server.verified) server.state = "serving";
      sink.send(server.id, { type: "serve", clients: d.clients });
      for (const id of d.clients) {
        const c = sink.peers.get(id);
        if (!c) continue;
        c.state = "receiving";
        c.server = server.id;
        c.servedBy.push(server.id);
        c.assignedAt = d.at;
        sink.send(id, {
          type: "assign",
          server: { id: server.id, url: server.url },
          ticket: issueTicket(key, sink.random(16), c.address),
        });
      }
      sink.event("assign", {
        server: server.id,
        clients: d.clients.join(","),
        partial: d.partial,
      });
      return;
    }
    case "move": {
      // A demoted relay's downstream now fetches from the relay's own upstream.
      const server = sink.peers.get(d.server);
      const key = sink.ticketKey(d.server);
      const c = sink.peers.get(d.client);
      if (!server?.url || !key || !c) return;
      server.serving = [...server.serving.filter((id) => id !== d.from), d.client];
      sink.send(server.id, { type: "serve", clients: server.serving });
      c.server = server.id;
      c.servedBy.push(server.id);
      c.assignedAt = d.at;
      sink.send(c.id, {
        type: "assign",
        server: { id: server.id, url: server.url },
        ticket: issueTicket(key, sink.random(16), c.address),
      });
      sink.event("move", { peer: d.client, from: d.from, server: d.server });
      return;
    }
    case "demoted": {
      const p = sink.peers.get(d.peer);
      if (p) {
        p.demoted = d.reason;
        p.serving = [];
      }
      sink.event("demoted", { peer: d.peer, reason: d.reason, detail: d.detail });
      return;
    }
    case "batch-done": {
      const server = sink.peers.get(d.server);
      if (server) server.serving = [];
      sink.event("batch-done", { server: d.server });
      return;
    }
    case "requeued": {
      const c = sink.peers.get(d.client);
      if (c && c.state === "receiving") {
        c.state = "waiting";
        c.server = undefined;
      }
      sink.event("requeued", { peer: d.client, reason: d.reason });
      return;
    }
    case "ejected":
      sink.event("server-ejected", { server: d.server, clients: d.clients.join(",") });
      return;
    case "rejected":
      sink.event("scheduler-rejected", { event: d.event.type, reason: d.reason });
      return;
  }
}
