// Run history in an embedded SQLite database (node:sqlite, built into Deno): one row per run,
// one row per PC per run, and every failure a PC reported. Rows are written as the master's
// events happen, so the history survives a master that stops or crashes mid-run.
import { DatabaseSync } from "node:sqlite";
import type { Logger } from "../../imagetools/kit/mod.ts";
import type { EventRecord, MasterCore } from "./core.ts";
import type { PeerRecord } from "./peer_record.ts";

/** Default file name; the master keeps it beside the slices folder. */
export const HISTORY_FILE = "cascade-history.sqlite";

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

export interface RunInfo {
  startedAt: number;
  imageId: string;
  imageName: string;
  mode: string;
  expect?: number;
}

export type PcRow = Omit<HistoryPc, "failures" | "disk" | "diskReason" | "finish" | "boots">;

const SCHEMA = `
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
PRAGMA user_version = 1;
`;

type Row = Record<string, unknown>;

export class History {
  readonly path: string;
  #db: DatabaseSync;

  constructor(path: string, opts: { readOnly?: boolean } = {}) {
    this.path = path;
    try {
      this.#db = new DatabaseSync(path, { readOnly: opts.readOnly ?? false });
      this.#db.exec("PRAGMA busy_timeout = 5000");
      if (!opts.readOnly) this.#db.exec(SCHEMA);
    } catch (err) {
      throw new Error(`Cannot open the run history "${path}": ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  startRun(r: RunInfo): number {
    const res = this.#db.prepare(
      "INSERT INTO runs (started_at, image_id, image_name, mode, expect) VALUES (?, ?, ?, ?, ?)",
    ).run(Math.round(r.startedAt), r.imageId, r.imageName, r.mode, r.expect ?? null);
    return Number(res.lastInsertRowid);
  }

  endRun(runId: number, at: number, reason: string): void {
    this.#db.prepare("UPDATE runs SET ended_at = ?, end_reason = ? WHERE id = ?")
      .run(Math.round(at), reason, runId);
  }

  /** Insert or update one PC's row of a run. */
  savePc(pc: PcRow): void {
    this.#db.prepare(
      `INSERT INTO pcs (run_id, peer, mac, address, image_id, started_at, ended_at, bytes,
         verified, readback_seconds, served_by, state)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (run_id, peer) DO UPDATE SET mac = excluded.mac, address = excluded.address,
         started_at = excluded.started_at, ended_at = excluded.ended_at, bytes = excluded.bytes,
         verified = excluded.verified,
         readback_seconds = coalesce(excluded.readback_seconds, readback_seconds),
         served_by = excluded.served_by, state = excluded.state`,
    ).run(
      pc.runId,
      pc.peer,
      pc.mac,
      pc.address,
      pc.imageId,
      Math.round(pc.startedAt),
      pc.endedAt === null ? null : Math.round(pc.endedAt),
      pc.bytes,
      pc.verified ? 1 : 0,
      pc.readbackSeconds,
      pc.servedBy.join(","),
      pc.state,
    );
  }

  addFailure(runId: number, peer: string, f: HistoryFailure): void {
    this.#db.prepare(
      "INSERT INTO failures (run_id, peer, at, reason, detail, server) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(runId, peer, Math.round(f.at), f.reason, f.detail, f.server);
  }

  saveDisk(
    runId: number,
    peer: string,
    d: {
      disk?: string;
      diskReason?: string;
      finish?: { ok: boolean; step: string; detail: string };
    },
  ): void {
    this.#db.prepare(
      `INSERT INTO pc_disks (run_id, peer, disk, disk_reason, finish_ok, finish_step, finish_detail)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (run_id, peer) DO UPDATE SET disk = excluded.disk,
         disk_reason = excluded.disk_reason, finish_ok = excluded.finish_ok,
         finish_step = excluded.finish_step, finish_detail = excluded.finish_detail`,
    ).run(
      runId,
      peer,
      d.disk ?? null,
      d.diskReason ?? null,
      d.finish ? (d.finish.ok ? 1 : 0) : null,
      d.finish?.step ?? null,
      d.finish?.detail ?? null,
    );
  }

  addBoot(
    runId: number,
    b: { mac: string; at: number; address: string; answer: string; group?: string },
  ): void {
    this.#db.prepare(
      "INSERT INTO boots (run_id, mac, at, address, answer, grp) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(runId, b.mac, Math.round(b.at), b.address, b.answer, b.group ?? null);
  }

  /** Boot answers of a run, oldest first. */
  boots(
    runId: number,
  ): { mac: string; at: number; address: string; answer: string; group: string | null }[] {
    return this.#db.prepare("SELECT * FROM boots WHERE run_id = ? ORDER BY id").all(runId).map((
      r: Row,
    ) => ({
      mac: String(r.mac),
      at: Number(r.at),
      address: String(r.address),
      answer: String(r.answer),
      group: r.grp === null ? null : String(r.grp),
    }));
  }

  /** Runs, newest first. */
  runs(limit = 20): HistoryRun[] {
    return this.#db.prepare(
      `SELECT r.*, (SELECT count(*) FROM pcs p WHERE p.run_id = r.id) AS n,
         (SELECT count(*) FROM pcs p WHERE p.run_id = r.id AND p.verified) AS ok
       FROM runs r ORDER BY r.id DESC LIMIT ?`,
    ).all(limit).map((r: Row) => ({
      id: Number(r.id),
      startedAt: Number(r.started_at),
      endedAt: r.ended_at === null ? null : Number(r.ended_at),
      endReason: r.end_reason as string | null,
      imageId: String(r.image_id),
      imageName: String(r.image_name),
      mode: String(r.mode),
      expect: r.expect === null ? null : Number(r.expect),
      pcs: Number(r.n),
      verified: Number(r.ok),
    }));
  }

  run(id: number): HistoryRun | undefined {
    return this.runs(Number.MAX_SAFE_INTEGER).find((r) => r.id === id);
  }

  /** A run's PCs in the order they joined, each with its failures in order. */
  pcs(runId: number): HistoryPc[] {
    const failures = new Map<string, HistoryFailure[]>();
    for (
      const f of this.#db.prepare("SELECT * FROM failures WHERE run_id = ? ORDER BY id").all(runId)
    ) {
      const list = failures.get(String(f.peer)) ?? [];
      list.push({
        at: Number(f.at),
        reason: String(f.reason),
        detail: String(f.detail),
        server: f.server === null ? null : String(f.server),
      });
      failures.set(String(f.peer), list);
    }
    const disks = new Map<string, Row>();
    for (const d of this.#db.prepare("SELECT * FROM pc_disks WHERE run_id = ?").all(runId)) {
      disks.set(String(d.peer), d);
    }
    const boots = this.boots(runId);
    return this.#db.prepare("SELECT * FROM pcs WHERE run_id = ? ORDER BY started_at, peer")
      .all(runId).map((r: Row) => {
        const d = disks.get(String(r.peer));
        const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
        return {
          runId: Number(r.run_id),
          peer: String(r.peer),
          mac: r.mac === null ? null : String(r.mac),
          address: String(r.address),
          imageId: String(r.image_id),
          startedAt: Number(r.started_at),
          endedAt: r.ended_at === null ? null : Number(r.ended_at),
          bytes: Number(r.bytes),
          verified: Boolean(r.verified),
          readbackSeconds: r.readback_seconds === null ? null : Number(r.readback_seconds),
          servedBy: String(r.served_by).split(",").filter(Boolean),
          state: String(r.state),
          failures: failures.get(String(r.peer)) ?? [],
          disk: str(d?.disk),
          diskReason: str(d?.disk_reason),
          finish: d && d.finish_ok !== null
            ? {
              ok: Boolean(d.finish_ok),
              step: String(d.finish_step),
              detail: String(d.finish_detail),
            }
            : null,
          boots: boots.filter((b) => b.mac === r.mac).map((b) => ({
            at: b.at,
            answer: b.answer,
            group: b.group,
          })),
        };
      });
  }

  /** Remember that the PC with this MAC holds and has verified this image. */
  markImaged(mac: string, imageId: string, at: number): void {
    this.#db.prepare(
      `INSERT INTO imaged (mac, image_id, at) VALUES (?, ?, ?)
       ON CONFLICT (mac) DO UPDATE SET image_id = excluded.image_id, at = excluded.at`,
    ).run(mac, imageId, Math.round(at));
  }

  /** The image the PC with this MAC was last imaged with, or null. */
  imagedWith(mac: string): string | null {
    const row = this.#db.prepare("SELECT image_id FROM imaged WHERE mac = ?").get(mac) as
      | Row
      | undefined;
    return row ? String(row.image_id) : null;
  }

  /** Forget that a PC (or, with "all", every PC) was imaged, so it is imaged again at its next
   *  network boot. Returns how many PCs were forgotten. */
  forgetImaged(mac: string | "all"): number {
    const res = mac === "all"
      ? this.#db.prepare("DELETE FROM imaged").run()
      : this.#db.prepare("DELETE FROM imaged WHERE mac = ?").run(mac);
    return Number(res.changes);
  }

  /** The group ("" for none) a PC was enrolled into through an enrolment window, or null. */
  enrolledAs(mac: string): string | null {
    const row = this.#db.prepare("SELECT grp FROM enrolled WHERE mac = ?").get(mac) as
      | Row
      | undefined;
    return row ? String(row.grp) : null;
  }

  enrol(mac: string, group: string, at = Date.now()): void {
    this.#db.prepare(
      "INSERT INTO enrolled (mac, grp, at) VALUES (?, ?, ?) ON CONFLICT (mac) DO NOTHING",
    ).run(mac, group, Math.round(at));
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

export function openHistory(path: string, opts: { readOnly?: boolean } = {}): History {
  return new History(path, opts);
}

export interface RecordOptions {
  imageName: string;
  /** Wall-clock milliseconds for a core time (the core's clock is monotonic seconds). */
  toWall: (at: number) => number;
  log: Logger;
}

/** Events after which a PC's row changes; the value names the event field(s) with the PCs. */
const PC_EVENTS: Record<string, "peer" | "clients"> = {
  join: "peer",
  assign: "clients",
  received: "peer",
  verified: "peer",
  "verify-failed": "peer",
  "client-failed": "peer",
  requeued: "peer",
  leave: "peer",
  finish: "peer",
};

/**
 * Record the core's run into the history: a run row now, then each client's row and failures
 * as its events happen, and the end. Returns a function that stops recording. A history that
 * cannot be written is logged once and never disturbs the run.
 */
export function recordRun(history: History, core: MasterCore, o: RecordOptions): () => void {
  const { config } = core;
  const runId = history.startRun({
    startedAt: o.toWall(core.startedAt),
    imageId: config.imageId,
    imageName: o.imageName,
    mode: config.mode,
    expect: config.expect,
  });
  const failuresSaved = new Map<string, number>();
  const readback = new Map<string, number>();
  const leftAt = new Map<string, number>();
  let broken = false;

  const save = (p: PeerRecord, at: number) => {
    if (p.role !== "client" || p.state === "booting") return;
    const ended = p.doneAt ?? (p.state === "left" ? leftAt.get(p.id) ?? at : undefined);
    history.savePc({
      runId,
      peer: p.id,
      mac: p.mac ?? null,
      address: p.address,
      imageId: config.imageId,
      startedAt: o.toWall(p.joinedAt),
      endedAt: ended === undefined ? null : o.toWall(ended),
      bytes: p.bytes,
      verified: p.verified,
      readbackSeconds: readback.get(p.id) ?? null,
      servedBy: p.servedBy,
      state: p.state,
    });
    // The core keeps only a peer's recent failures; failureCount says how many came in all.
    const saved = failuresSaved.get(p.id) ?? 0;
    const total = p.failureCount ?? p.failures.length;
    const fresh = Math.min(total - saved, p.failures.length);
    for (const f of p.failures.slice(p.failures.length - fresh)) {
      history.addFailure(runId, p.id, {
        at: o.toWall(f.at),
        reason: f.reason,
        detail: f.detail,
        server: f.server ?? null,
      });
    }
    failuresSaved.set(p.id, total);
    if (p.disk || p.finish) {
      history.saveDisk(runId, p.id, { disk: p.disk, diskReason: p.diskReason, finish: p.finish });
    }
  };

  const onEvent = (e: EventRecord) => {
    if (broken) return;
    try {
      const peer = String(e.fields.peer);
      if (e.event === "verified" && typeof e.fields.readback === "number") {
        readback.set(peer, e.fields.readback);
      }
      const mac = core.peers.get(peer)?.mac;
      // Only a MAC bound to its boot request: a hello naming some MAC must not mark it imaged.
      const bound = core.peers.get(peer)?.macBound;
      if (e.event === "verified" && mac && bound) {
        history.markImaged(mac, config.imageId, o.toWall(e.at));
      }
      if (e.event === "boot") {
        history.addBoot(runId, {
          mac: peer,
          at: o.toWall(e.at),
          address: String(e.fields.address ?? ""),
          answer: String(e.fields.answer),
          ...(e.fields.group !== undefined ? { group: String(e.fields.group) } : {}),
        });
        return;
      }
      // A disk that failed its finishing step is imaged again at its next boot.
      if (e.event === "finish" && e.fields.ok === false && mac) history.forgetImaged(mac);
      if (e.event === "leave") leftAt.set(peer, e.at);
      if (e.event === "join") leftAt.delete(peer);
      if (e.event === "end") {
        for (const p of core.peers.values()) save(p, e.at);
        history.endRun(runId, o.toWall(e.at), String(e.fields.reason));
        return;
      }
      const field = PC_EVENTS[e.event];
      if (!field) return;
      for (const id of String(e.fields[field] ?? "").split(",")) {
        const p = core.peers.get(id);
        if (p) save(p, e.at);
      }
    } catch (err) {
      broken = true;
      o.log("history-error", { path: history.path, error: (err as Error).message });
    }
  };
  o.log("history", { path: history.path, run: runId });
  return core.subscribe(onEvent);
}
