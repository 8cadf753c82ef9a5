// The run's status as plain data (JSON API, dashboard, summary table). Pure.
import type { Manifest } from "../../imagetools/mod.ts";
import { formatBytes, formatDuration } from "../../imagetools/kit/mod.ts";
import type { PeerStatus, RunStatus } from "../protocol/mod.ts";
import type { MasterCore } from "./core.ts";
import type { PeerRecord } from "./peer_record.ts";

export type { PeerStatus, RunStatus };

export function peerStatus(p: PeerRecord, chunkSize: number): PeerStatus {
  const progress = p.total ? p.held / p.total : 1;
  const left = (p.total - p.held) * chunkSize;
  return {
    id: p.id,
    role: p.role,
    name: p.name,
    ...(p.mac ? { mac: p.mac } : {}),
    address: p.address,
    ...(p.url ? { url: p.url } : {}),
    state: p.state,
    held: p.held,
    total: p.total,
    progress,
    bytes: p.bytes,
    rate: p.rate,
    eta: p.state === "receiving" && p.rate > 0 ? left / p.rate : null,
    ...(p.server ? { server: p.server } : {}),
    servedBy: p.servedBy,
    serving: p.serving,
    verified: p.verified,
    ...(p.disk ? { disk: p.disk } : {}),
    ...(p.diskReason ? { diskReason: p.diskReason } : {}),
    ...(p.finish ? { finish: p.finish } : {}),
    joinedAt: p.joinedAt,
    ...(p.doneAt !== undefined ? { doneAt: p.doneAt } : {}),
    seconds: p.doneAt !== undefined ? p.doneAt - p.joinedAt : null,
    failures: p.failures,
    connected: p.connected,
  };
}

export function runStatus(core: MasterCore, manifest: Manifest, now: number): RunStatus {
  const snap = core.scheduler.snapshot();
  const peers = [...core.peers.values()].map((p) => peerStatus(p, manifest.chunkSize));
  // A booting PC is not a client yet: it shows up in the list, not in the totals.
  const clients = peers.filter((p) => p.role === "client" && p.state !== "booting");
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
    paused: snap.paused,
    totals: {
      clients: clients.length,
      booting: peers.filter((p) => p.state === "booting").length,
      verified: clients.filter((p) => p.verified).length,
      receiving: clients.filter((p) => p.state === "receiving").length,
      waiting: clients.filter((p) => p.state === "waiting").length,
      failed: clients.filter((p) => !p.verified && (p.state === "left" || p.state === "failed"))
        .length,
      servers: peers.filter((p) => p.state === "serving").length,
      bytesReceived: clients.reduce((n, p) => n + p.bytes, 0),
    },
    queues: { servers: snap.serverQueue, clients: snap.clientQueue },
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
