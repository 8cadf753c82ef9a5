// The run history's rows and its SQLite schema: one row per run, one per PC per run, every
// failure, boot answer, disk choice, imaged and enrolled PC (history.ts reads and writes them).

export interface HistoryRun {
  id: number;
  /** Milliseconds since the epoch. */
  startedAt: number;
  endedAt: number | null;
  endReason: string | null;
  imageId: string;
  imageName: string;
  mode: string;
  expect: number | null;
  pcs: number;
  verified: number;
}

export interface HistoryFailure {
  at: number;
  reason: string;
  detail: string;
  server: string | null;
}

export interface HistoryPc {
  runId: number;
  peer: string;
  mac: string | null;
  address: string;
  imageId: string;
  startedAt: number;
  endedAt: number | null;
  bytes: number;
  /** The PC read its whole disk back and it matched the manifest. */
  verified: boolean;
  readbackSeconds: number | null;
  servedBy: string[];
  state: string;
  failures: HistoryFailure[];
  /** The disk the PC chose and why (its target rule), when it said. */
  disk: string | null;
  diskReason: string | null;
  /** How finishing its verified disk went (the last part that ran), if it did. */
  finish: { ok: boolean; step: string; detail: string } | null;
  /** Every boot answer its MAC got during the run: "image" or "local:<why>". */
  boots: { at: number; answer: string; group: string | null }[];
}

/** One admin action as the history keeps it. */
export interface HistoryAdminAction {
  /** Milliseconds since the epoch. */
  at: number;
  /** The name given at sign-in and the address ("ann@10.0.0.9"), or token@address. */
  by: string;
  /** Which sign-in: a digest of the session ("session:1a2b…"), or "token" for a bearer token. */
  session: string;
  action: string;
  /** The image's run it touched (null: every run, or none). */
  image: string | null;
  /** The request's fields and the outcome, as JSON. */
  detail: string;
}

export interface RunInfo {
  startedAt: number;
  imageId: string;
  imageName: string;
  mode: string;
  expect?: number;
}

export type PcRow = Omit<HistoryPc, "failures" | "disk" | "diskReason" | "finish" | "boots">;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  end_reason TEXT,
  image_id TEXT NOT NULL,
  image_name TEXT NOT NULL,
  mode TEXT NOT NULL,
  expect INTEGER
);
CREATE TABLE IF NOT EXISTS pcs (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  peer TEXT NOT NULL,
  mac TEXT,
  address TEXT NOT NULL,
  image_id TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  bytes INTEGER NOT NULL,
  verified INTEGER NOT NULL,
  readback_seconds REAL,
  served_by TEXT NOT NULL,
  state TEXT NOT NULL,
  PRIMARY KEY (run_id, peer)
);
CREATE TABLE IF NOT EXISTS failures (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  peer TEXT NOT NULL,
  at INTEGER NOT NULL,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL,
  server TEXT
);
CREATE INDEX IF NOT EXISTS failures_by_pc ON failures (run_id, peer);
-- PCs imaged and verified, by MAC: netboot boots them from their own disk until re-imaged.
CREATE TABLE IF NOT EXISTS imaged (
  mac TEXT PRIMARY KEY,
  image_id TEXT NOT NULL,
  at INTEGER NOT NULL
);
-- Per PC of a run: the disk it chose and why, and how finishing that disk went.
CREATE TABLE IF NOT EXISTS pc_disks (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  peer TEXT NOT NULL,
  disk TEXT,
  disk_reason TEXT,
  finish_ok INTEGER,
  finish_step TEXT,
  finish_detail TEXT,
  PRIMARY KEY (run_id, peer)
);
-- Every boot answer the master gave during a run, by MAC.
CREATE TABLE IF NOT EXISTS boots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  mac TEXT NOT NULL,
  at INTEGER NOT NULL,
  address TEXT NOT NULL,
  answer TEXT NOT NULL,
  grp TEXT
);
-- PCs enrolled for imaging through an admin's window (group "" = none), by MAC.
CREATE TABLE IF NOT EXISTS enrolled (
  mac TEXT PRIMARY KEY,
  grp TEXT NOT NULL,
  at INTEGER NOT NULL
);
-- Every admin action (page or API): who took it, from which sign-in, when, on which image.
CREATE TABLE IF NOT EXISTS admin_actions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  who TEXT NOT NULL,
  session TEXT NOT NULL,
  action TEXT NOT NULL,
  image TEXT,
  detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS boots_by_mac ON boots (mac, at);
PRAGMA user_version = 1;
`;
