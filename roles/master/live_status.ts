// What the dashboard, /api/v1/status and /metrics show: the run's status (status.ts) plus the
// master's admin state, bytes served per peer, the run's ETA and the latest events. Pure.
import type { Manifest } from "../../imagetools/mod.ts";
import type { LivePeer, LiveStatus, RunStatus } from "../protocol/mod.ts";
import type { MasterCore } from "./core.ts";
import { peerStatus, runStatus } from "./status.ts";
import type { PeerRecord } from "./peer_record.ts";

export type { LivePeer, LiveStatus };

/** How many recent events the status carries. */
export const RECENT_EVENTS = 12;

export function liveStatus(core: MasterCore, manifest: Manifest, now: number): LiveStatus {
  const base = runStatus(core, manifest, now, livePeer);
  return {
    ...base,
    draining: core.draining,
    expect: core.config.expect ?? null,
    eta: runEta(base),
    recent: core.events.slice(-RECENT_EVENTS),
  };
}

/** A peer's status and the bytes it served (the same fields as before, served last). */
function livePeer(p: PeerRecord, chunkSize: number): LivePeer {
  const s = peerStatus(p, chunkSize) as LivePeer;
  s.served = p.served ?? 0;
  return s;
}

/**
 * The run's ETA: the slowest receiving PC, or all bytes still missing over the room's current
 * total rate when that is later (it counts waiting PCs too). An estimate: in a cascade the total
 * rate grows as PCs start serving, so the figure falls faster than the clock early on.
 */
export function runEta(s: RunStatus): number | null {
  if (s.ended) return null;
  const open = s.peers.filter((p) =>
    p.role === "client" && !p.verified && p.state !== "left" && p.state !== "booting"
  );
  if (open.length === 0) return null;
  const rate = open.reduce((n, p) => n + (p.state === "receiving" ? p.rate : 0), 0);
  if (rate <= 0) return null;
  const missing = open.reduce((n, p) => n + (p.total - p.held) * s.image.chunkSize, 0);
  const slowest = Math.max(0, ...open.map((p) => p.eta ?? 0));
  return Math.max(slowest, missing / rate);
}
