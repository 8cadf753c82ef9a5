// The dashboard feed from the master's side: the live status boiled down to a compact snapshot
// (roles/protocol/feed.ts has the shapes), and the delta between two snapshots. Pure: status
// in, plain data out; the events stream (events_stream.ts) computes one delta per tick for all
// viewers.
import { formatDuration } from "../../imagetools/kit/mod.ts";
import type {
  EventRecord,
  FeedDelta,
  FeedPeer,
  FeedRun,
  FeedRunExtra,
  FeedSnapshot,
  LivePeer,
  LiveStatus,
  RunLink,
  RunStatus,
} from "../protocol/mod.ts";
import { failureNote, shownState } from "./dashboard/mod.ts";

/** How many recent events a feed's run part carries. */
export const FEED_EVENTS = 8;

/** Two significant digits: a rate that wobbles by a percent is not a change worth sending. */
export function roughRate(rate: number): number {
  if (!(rate > 0)) return 0;
  const step = 10 ** (Math.floor(Math.log10(rate)) - 1);
  return Math.round(rate / step) * step;
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function feedPeer(p: LivePeer, group?: string): FeedPeer {
  const state = shownState(p);
  const out: FeedPeer = {
    r: p.role === "client" ? "c" : p.role === "fake" ? "f" : "s",
    s: state,
    p: Math.floor(p.progress * 1000),
  };
  if (p.name !== p.id) out.n = p.name;
  if (p.mac && p.mac !== p.id) out.m = p.mac;
  if (p.address) out.a = p.address;
  if (p.state === "receiving" && p.rate > 0) out.v = roughRate(p.rate);
  const from = p.server ?? p.servedBy.at(-1);
  if (from) out.sv = from;
  if (p.serving.length) out.sn = p.serving.length;
  if (p.failures.length) {
    out.f = p.failures.length;
    const note = failureNote(p);
    if (note) out.why = clip(note, 200);
  }
  if (p.verified) out.ok = 1;
  if (group) out.g = group;
  if (p.seconds !== null) out.t = Math.round(p.seconds);
  return out;
}

function eventText(e: EventRecord, startedAt: number): string {
  const f = Object.entries(e.fields)
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  return clip(`+${formatDuration(Math.max(0, e.at - startedAt))} ${e.event} ${f}`.trim(), 120);
}

/** Every image's run in a few numbers; `names` are the images' names on the master. */
export function runLinks(statuses: RunStatus[], names: string[]): RunLink[] {
  return statuses.map((s, i) => ({
    name: names[i],
    imageId: s.imageId,
    imageName: s.image.name,
    ended: s.ended,
    paused: s.paused,
    clients: s.totals.clients,
    verified: s.totals.verified,
    receiving: s.totals.receiving,
    failed: s.totals.failed,
  }));
}

export function feedRun(s: LiveStatus, extra: FeedRunExtra = {}): FeedRun {
  return {
    imageId: s.imageId,
    image: s.image,
    mode: s.mode,
    ended: s.ended,
    paused: s.paused,
    draining: s.draining,
    expect: s.expect,
    eta: s.eta === null ? null : Math.round(s.eta),
    totals: { ...s.totals },
    queues: { servers: s.queues.servers.length, clients: s.queues.clients.length },
    recent: s.recent.slice(-FEED_EVENTS).reverse().map((e) => eventText(e, s.startedAt)),
    unenrolled: {
      count: s.unenrolled.length,
      first: s.unenrolled.slice(0, 20).map((u) => `${u.mac} (${u.address})`),
    },
    ...extra,
  };
}

/** The feed at `seq`; `groupOf` names a PC's group (or switch) when the master knows one. */
export function feedSnapshot(
  s: LiveStatus,
  seq: number,
  groupOf?: (p: LivePeer) => string | undefined,
  extra?: FeedRunExtra,
): FeedSnapshot {
  const peers: Record<string, FeedPeer> = {};
  for (const p of s.peers) peers[p.id] = feedPeer(p, groupOf?.(p));
  return { seq, t: Math.round(s.now - s.startedAt), run: feedRun(s, extra), peers };
}

/** What changed from `prev` to `next` (whose seq is prev.seq + 1). */
export function feedDiff(prev: FeedSnapshot, next: FeedSnapshot): FeedDelta {
  const delta: FeedDelta = { seq: next.seq, t: next.t };
  if (JSON.stringify(prev.run) !== JSON.stringify(next.run)) delta.run = next.run;
  const set: Record<string, Record<string, unknown>> = {};
  let changed = false;
  for (const [id, peer] of Object.entries(next.peers)) {
    const old = prev.peers[id] as unknown as Record<string, unknown> | undefined;
    if (!old) {
      set[id] = { ...peer };
      changed = true;
      continue;
    }
    const now = peer as unknown as Record<string, unknown>;
    let change: Record<string, unknown> | undefined;
    for (const k of Object.keys(now)) {
      if (old[k] !== now[k]) (change ??= {})[k] = now[k];
    }
    for (const k of Object.keys(old)) if (!(k in now)) (change ??= {})[k] = null;
    if (change) {
      set[id] = change;
      changed = true;
    }
  }
  if (changed) delta.set = set;
  const del = Object.keys(prev.peers).filter((id) => !(id in next.peers));
  if (del.length) delta.del = del;
  return delta;
}
