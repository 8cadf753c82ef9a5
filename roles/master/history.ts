// Run history in an embedded SQLite database (node:sqlite, built into Deno): one row per run,
// one row per PC per run, and every failure a PC reported. Rows are written as the master's
// events happen (history_record.ts), so the history survives a master that stops or crashes
// mid-run. This file is the store; the rows and the schema are in history_schema.ts.
import { DatabaseSync } from "node:sqlite";
import {
  type HistoryAdminAction,
  type HistoryFailure,
  type HistoryPc,
  type HistoryRun,
  type PcRow,
  type RunInfo,
  SCHEMA,
} from "./history_schema.ts";

export type {
  HistoryAdminAction,
  HistoryFailure,
  HistoryPc,
  HistoryRun,
  PcRow,
  RunInfo,
} from "./history_schema.ts";

/** Default file name; the master keeps it beside the slices folder. */
export const HISTORY_FILE = "cascade-history.sqlite";

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

  /** A MAC's boot answers since `since` (milliseconds since the epoch), oldest first. */
  bootsOf(
    mac: string,
    since: number,
    limit = 50,
  ): { at: number; address: string; answer: string; group: string | null }[] {
    return this.#db.prepare(
      "SELECT * FROM (SELECT * FROM boots WHERE mac = ? AND at >= ? ORDER BY id DESC LIMIT ?) ORDER BY id",
    ).all(mac, Math.floor(since), limit).map((r: Row) => ({
      at: Number(r.at),
      address: String(r.address),
      answer: String(r.answer),
      group: r.grp === null ? null : String(r.grp),
    }));
  }

  addAdminAction(a: HistoryAdminAction): void {
    this.#db.prepare(
      "INSERT INTO admin_actions (at, who, session, action, image, detail) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(Math.round(a.at), a.by, a.session, a.action, a.image, a.detail);
  }

  /** The latest admin actions, newest first. */
  adminActions(limit = 50): HistoryAdminAction[] {
    // A history written by an older master (opened read-only) has no such table yet.
    const table = this.#db.prepare(
      "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'admin_actions'",
    ).get();
    if (!table) return [];
    return this.#db.prepare("SELECT * FROM admin_actions ORDER BY id DESC LIMIT ?").all(limit)
      .map((r: Row) => ({
        at: Number(r.at),
        by: String(r.who),
        session: String(r.session),
        action: String(r.action),
        image: r.image === null ? null : String(r.image),
        detail: String(r.detail),
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

  /** The MACs enrolled into a group through enrolment windows. */
  enrolledIn(group: string): string[] {
    return this.#db.prepare("SELECT mac FROM enrolled WHERE grp = ? ORDER BY at").all(group)
      .map((r: Row) => String(r.mac));
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
