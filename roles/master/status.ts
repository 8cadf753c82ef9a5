// The run's status as plain data (JSON API, dashboard, summary table). Pure.
import type { Manifest } from "../../imagetools/mod.ts";
import { formatBytes, formatDuration } from "../../imagetools/kit/mod.ts";
import type { PeerStatus, RunStatus } from "../protocol/mod.ts";
import type { MasterCore } from "./core.ts";
import type { PeerRecord } from "./peer_record.ts";

export type { PeerStatus, RunStatus };

/** A peer's status. Built field by field (no spreads of optional parts), in the order the
 * JSON has always had: the status is built for every PC on every viewer tick, and the spreads
 * made it 8 us a PC (1,500 PCs, 4 ticks a second in a burst: 5 % of a core on this alone). */
export function peerStatus(p: PeerRecord, chunkSize: number): PeerStatus {
  const progress = p.total ? p.held / p.total : 1;
  const left = (p.total - p.held) * chunkSize;
  const s = { id: p.id, role: p.role, name: p.name } as PeerStatus;
  if (p.mac) s.mac = p.mac;
  s.address = p.address;
  if (p.url) s.url = p.url;
  s.state = p.state;
  s.held = p.held;
  s.total = p.total;
  s.progress = progress;
  s.bytes = p.bytes;
  s.rate = p.rate;
  s.eta = p.state === "receiving" && p.rate > 0 ? left / p.rate : null;
  if (p.server) s.server = p.server;
  s.servedBy = p.servedBy;
  s.serving = p.serving;
  s.verified = p.verified;
  if (p.disk) s.disk = p.disk;
  if (p.diskReason) s.diskReason = p.diskReason;
  if (p.finish) s.finish = p.finish;
  s.joinedAt = p.joinedAt;
  if (p.doneAt !== undefined) s.doneAt = p.doneAt;
  s.seconds = p.doneAt !== undefined ? p.doneAt - p.joinedAt : null;
  s.failures = p.failures;
  s.connected = p.connected;
  return s;
}

export function runStatus<P extends PeerStatus = PeerStatus>(
  core: MasterCore,
  manifest: Manifest,
  now: number,
  peerOf: (p: PeerRecord, chunkSize: number) => P = peerStatus as never,
): RunStatus & { peers: P[] } {
  const q = core.scheduler.queues();
  const peers: P[] = [];
  // A booting PC is not a client yet: it shows up in the list, not in the totals. One pass.
  const totals = {
    clients: 0,
    booting: 0,
    verified: 0,
    receiving: 0,
    waiting: 0,
    failed: 0,
    servers: 0,
    bytesReceived: 0,
  };
  for (const record of core.peers.values()) {
    const p = peerOf(record, manifest.chunkSize);
    peers.push(p);
    if (p.state === "booting") totals.booting++;
    if (p.state === "serving") totals.servers++;
    if (p.role !== "client" || p.state === "booting") continue;
    totals.clients++;
    if (p.verified) totals.verified++;
    if (p.state === "receiving") totals.receiving++;
    if (p.state === "waiting") totals.waiting++;
    if (!p.verified && (p.state === "left" || p.state === "failed")) totals.failed++;
    totals.bytesReceived += p.bytes;
  }
  return {
    imageId: core.config.imageId,
    image: {
      name: manifest.name,
      size: manifest.size,
      chunkSize: manifest.chunkSize,
      chunks: manifest.chunks.length,
    },
    mode: core.config.mode,
    startedAt: core.startedAt,
    now,
    ended: core.ended,
    paused: q.paused,
    totals,
    queues: { servers: q.serverQueue, clients: q.clientQueue },
    peers,
    unenrolled: [...core.unenrolled.values()],
  };
}

/** The end-of-run table: each PC, verified or not, time taken, who served it. */
export function summaryTable(status: RunStatus): string {
  const rows = status.peers.filter((p) => p.role === "client").map((p) => [
    p.id,
    p.verified ? "verified" : `NOT verified (${p.state})`,
    p.seconds !== null ? formatDuration(p.seconds) : "-",
    p.servedBy.join(" > ") || "-",
    String(p.failures.length),
  ]);
  const head = ["PC", "result", "time", "served by", "failures"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  const t = status.totals;
  return [
    line(head),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
    "",
    `${t.verified} of ${t.clients} PCs verified; image "${status.image.name}" ${
      formatBytes(status.image.size)
    } (${status.imageId.slice(0, 12)}), ${status.mode} mode, ${
      formatDuration(status.now - status.startedAt)
    }`,
  ].join("\n");
}
