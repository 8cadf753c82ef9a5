// The dashboard's feed (GET /api/v1/feed, /api/v1/events?feed=1): a compact snapshot of the run,
// then deltas that carry only what changed, so a viewer of 1,500 PCs costs what changed per
// tick rather than the whole page. The master computes snapshots and deltas (roles/master); the
// page applies them with applyFeedDelta below, which is written to run in the browser as well
// (the page inlines its source): no imports, no closures, plain JSON in and out.

/** One PC as the dashboard sees it; short keys, fields left out when empty. */
export interface FeedPeer {
  /** Role: "c" client, "s" server, "f" fake server. */
  r: "c" | "s" | "f";
  /** State as shown (a client that left unimaged is "failed"). */
  s: string;
  /** Progress in thousandths. */
  p: number;
  /** Name, when it differs from the id. */
  n?: string;
  /** MAC, address. */
  m?: string;
  a?: string;
  /** Receive rate, bytes/s, two significant digits (only while receiving). */
  v?: number;
  /** The server it receives from now, or last received from. */
  sv?: string;
  /** How many it serves now. */
  sn?: number;
  /** Failures so far, and the last one as text. */
  f?: number;
  why?: string;
  /** Verified by read-back. */
  ok?: 1;
  /** Group (or switch) the PC belongs to, when the master knows one. */
  g?: string;
  /** Seconds it took, once done. */
  t?: number;
}

export interface FeedRun {
  imageId: string;
  image: { name: string; size: number; chunkSize: number; chunks: number };
  mode: string;
  ended: string | null;
  paused: boolean;
  draining: boolean;
  expect: number | null;
  eta: number | null;
  totals: Record<string, number>;
  queues: { servers: number; clients: number };
  /** The latest events, newest first, as text lines ("+12s assign server=… clients=…"). */
  recent: string[];
  /** PCs that network-booted but are not enrolled (they boot their own disk): how many, and
   * the first 20 as "MAC (address)". */
  unenrolled: { count: number; first: string[] };
  /** With several images: this run's image name on the master, and every run at a glance. */
  name?: string;
  site?: RunLink[];
  /** The groups file's groups (the page offers to re-image each). */
  groups?: string[];
}

/** What the master adds to a run's part beyond its status (several images, groups). */
export type FeedRunExtra = Pick<FeedRun, "name" | "site" | "groups">;

/** One image's run in a few numbers (the dashboard's run bar, GET /api/v1/runs). */
export interface RunLink {
  /** The image's name on the master (?image=NAME). */
  name: string;
  imageId: string;
  imageName: string;
  ended: string | null;
  paused: boolean;
  clients: number;
  verified: number;
  receiving: number;
  failed: number;
}

export interface FeedSnapshot {
  seq: number;
  /** Seconds since the run started. */
  t: number;
  run: FeedRun;
  peers: Record<string, FeedPeer>;
}

/**
 * What changed from snapshot seq-1 to seq. `set` holds, per PC, only its changed fields (null:
 * the field went away; a PC not seen before comes whole); `del` the PCs gone; `run` the whole
 * run part when any of it changed.
 */
export interface FeedDelta {
  seq: number;
  t: number;
  run?: FeedRun;
  set?: Record<string, Record<string, unknown>>;
  del?: string[];
}

/**
 * Apply a delta onto a snapshot in place and return it; a delta that does not follow the
 * snapshot (a gap in seq) returns null: the viewer needs a fresh snapshot.
 */
export function applyFeedDelta(snap: FeedSnapshot, delta: FeedDelta): FeedSnapshot | null {
  if (delta.seq !== snap.seq + 1) return null;
  snap.seq = delta.seq;
  snap.t = delta.t;
  if (delta.run) snap.run = delta.run;
  const set = delta.set || {};
  for (const id of Object.keys(set)) {
    const change = set[id];
    const peer = (snap.peers[id] || (snap.peers[id] = {} as FeedPeer)) as unknown as Record<
      string,
      unknown
    >;
    for (const k of Object.keys(change)) {
      if (change[k] === null) delete peer[k];
      else peer[k] = change[k];
    }
  }
  for (const id of delta.del || []) delete snap.peers[id];
  return snap;
}
