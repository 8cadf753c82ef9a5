// Recording a run into the history: a run row when the master starts, then each client's row
// and failures as the core's events happen, and the end (history.ts is the store it writes).
import type { Logger } from "../../imagetools/kit/mod.ts";
import type { EventRecord, MasterCore } from "./core.ts";
import type { History } from "./history.ts";
import type { PeerRecord } from "./peer_record.ts";

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
