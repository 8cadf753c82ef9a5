// The client role: get the manifest, choose the disk (a path, or the disk a target rule picks),
// wait for a server, receive and verify every chunk onto it, read the whole disk back, then
// serve it on until the master ends the run; once it serves no more, finish the disk (GPT
// backup to its end, the group's finishing step). In relay mode its chunk server is up from
// the start and serves each chunk once verified.
//
// A disk that fails writes or reads is the PC's own failure: the client tells the master
// (reason "disk": no server is blamed; before its session, e.g. in the zero fill, through a
// short session of its own), hangs up and tries again after a backoff, a few times, then stops
// with the disk, the byte offset and the OS error (DiskError), never looping.
import { imageIdOf, parseManifest } from "../../imagetools/mod.ts";
import type { Logger } from "../../imagetools/kit/mod.ts";
import { Progress, type ProgressMode } from "../../imagetools/kit/mod.ts";
import { ControlSession } from "./control_session.ts";
import { startPeerChunkServer } from "./peer_chunk_server.ts";
import type { AfterAction, MasterMessage } from "../protocol/mod.ts";
import { proofOf, PROTOCOL_VERSION } from "../protocol/mod.ts";
import { ReceiveError, Receiver } from "../data/mod.ts";
import { isDiskFailure, openTarget, type TargetDisk } from "../data/mod.ts";
import { DiskError, resolveTarget } from "./target_choice.ts";
import { finishDisk, type FinishOutcome } from "./finish_step.ts";
import { switchName } from "./lldp.ts";
import { listenLldp } from "./lldp_listen.ts";
import { probeMaster } from "./probe.ts";
import { reportDiskFailure } from "./disk_report.ts";
import { fetchManifestFromPeers } from "./manifest_fetch.ts";
import { type Every, ReportTicker } from "./report_ticker.ts";

export { PROGRESS_MS } from "./report_ticker.ts";

export interface ClientOptions {
  masterUrl: string;
  /** A device or file path, or a target rule ("auto", "min:200GB,model:Samsung*"). */
  target: string;
  /** Where target rules look for disks (default /sys/block; tests use fixture trees). */
  sysBlock?: string;
  /** Tries again after a disk failure before it stops (default 3). */
  diskRetries?: number;
  /** Seconds before the first retry after a disk failure, doubled each time (default 5). */
  diskBackoff?: number;
  /** Opens the chosen disk (default openTarget; tests give disks that fail). */
  open?: (path: string, imageSize: number, imageName: string) => Promise<TargetDisk>;
  /** Accept only the manifest whose SHA-256 is this (from the kernel command line). */
  imageId?: string;
  name: string;
  mac?: string;
  /** Clients this PC serves at once once it is a server. */
  capacity: number;
  after: AfterAction;
  /** Address the chunk server listens on. */
  listen: string;
  /** Upload cap in bytes per second when serving. */
  rateLimit?: number;
  inflight: number;
  verifyMd5: boolean;
  progress: ProgressMode;
  log: Logger;
  /** Give up when the master cannot be reached for this long (seconds; 0 = never). */
  masterTimeout: number;
  /** Fetch the master's probe before the hello (default true). */
  probe?: boolean;
  /** Listen on this interface for the switch's LLDP frame, at most `lldpWait` s before hello. */
  lldp?: string;
  lldpWait?: number;
  /** Runs the progress ticker (tests record the intervals the master told). */
  every?: Every;
}

/** How long a PC that is done waits for the master's word on its proof before it goes. */
const PROVED_WAIT_MS = 30_000;

export interface ClientResult {
  verified: boolean;
  reason: string;
  /** The disk written. */
  disk: string;
  /** Finishing the verified disk: each part's outcome (empty when not verified). */
  finish: FinishOutcome[];
  bytesReceived: number;
  bytesRefetched: number;
  servers: string[];
}

export async function runClient(o: ClientOptions): Promise<ClientResult> {
  const { log } = o;
  // The switch's LLDP frame comes every 30 s or so: listen while everything else gets ready.
  const heard = o.lldp ? listenLldp(o.lldp, o.lldpWait ?? 31, log) : Promise.resolve(null);
  // From a peer that holds it (checked against the master's image id), else from the master.
  const { bytes: manifestBytes } = await fetchManifestFromPeers(
    o.masterUrl,
    log,
    o.masterTimeout,
    o.imageId,
  );
  const imageId = imageIdOf(manifestBytes);
  if (o.imageId && o.imageId !== imageId) {
    throw new Error(
      `Refusing image "${imageId}" from "${o.masterUrl}": this PC accepts only image "${o.imageId}"`,
    );
  }
  const manifest = parseManifest(new TextDecoder().decode(manifestBytes));
  // Which disk, and why, before anything is written (the console and, in hello, the master).
  const chosen = resolveTarget(o.target, manifest.size, o.sysBlock);
  log("target", { disk: chosen.path, reason: chosen.reason });
  const diskRetries = o.diskRetries ?? 3;
  const diskBackoff = o.diskBackoff ?? 5;
  // Before the session: the master hears of a disk failure through a short session of its own.
  const report = (detail: string, held: number) =>
    reportDiskFailure({
      masterUrl: o.masterUrl,
      name: o.name,
      mac: o.mac,
      imageId,
      capacity: o.capacity,
      held,
      disk: chosen.path,
      diskReason: chosen.reason,
      detail,
      log,
    });
  let target: TargetDisk;
  try {
    target = await (o.open ?? openTarget)(chosen.path, manifest.size, manifest.name);
  } catch (err) {
    await report((err as Error).message, 0);
    throw new DiskError((err as Error).message, { cause: err });
  }
  const receiver = new Receiver({
    manifestBytes,
    target,
    inflight: o.inflight,
    verifyMd5: o.verifyMd5,
    log,
    peerId: o.name,
  });
  const progress = new Progress({ label: o.name, total: manifest.size, mode: o.progress });
  const held = () => receiver.stats().heldChunks;
  const bytesHeld = () => Math.min(manifest.size, held() * manifest.chunkSize);

  // Before the session: a disk failure here is reported, retried in place, then stops the PC.
  const early = async (what: string, f: () => Promise<void>) => {
    for (let attempt = 1;; attempt++) {
      try {
        return await f();
      } catch (err) {
        if (!isDiskFailure(err)) throw err;
        const last = attempt > diskRetries;
        const detail = `${err.message}${last ? ` (${attempt} tries: giving up)` : ""}`;
        log("disk-failed", { what, disk: chosen.path, attempt, of: diskRetries + 1, detail });
        await report(detail, held());
        if (last) {
          target.close();
          throw new DiskError(detail, { cause: err });
        }
        const wait = diskBackoff * 2 ** (attempt - 1);
        console.error(`Cascade: disk "${chosen.path}" failed (try ${attempt}): ${err.message}`);
        console.error(`Cascade: trying again in ${wait} s`);
        await new Promise((r) => setTimeout(r, wait * 1000));
      }
    }
  };
  // A disk that holds something (a block device always may: its stat size says 0) is checked
  // in the background while the PC joins and receives: a PC imaged (or half imaged) before a
  // reboot resumes from what it verified, one that holds an older image fetches what changed.
  const existed = target.fresh !== true;
  if (existed) {
    const scan = receiver.startScan();
    void scan.done.then(() =>
      log("resume", {
        target: chosen.path,
        held: scan.marked,
        total: manifest.chunks.length,
        ...(scan.failure !== undefined ? { error: (scan.failure as Error).message } : {}),
      })
    );
  } else await early("zeros", () => receiver.fillZeros());
  const { server, setTicketKey } = await startPeerChunkServer({
    source: receiver,
    listen: o.listen,
    rateLimit: o.rateLimit,
    log,
  });

  // A used disk is still being scanned: it joins as a client and says it is done once the scan
  // found everything (its read-back then has nothing left to read).
  let verified = false;
  const probe = verified || o.probe === false ? undefined : await probeMaster(o.masterUrl, log);
  const neighbor = await heard;
  // The fetch in progress (a new assignment supersedes it).
  let current = null as { server: string; abort: AbortController } | null;
  const servers: string[] = [];
  type Outcome = { verified: boolean; reason: string; diskFailed?: boolean };
  let finish!: (r: Outcome) => void;
  const finished = new Promise<Outcome>((r) => (finish = r));
  let diskFailures = 0;
  let address: string | undefined;
  // "received" is on its way: an assign the master sent before it read that (a move of a PC
  // that was finishing) is answered by it already. Acting on it would send a second
  // "received" and run a second read-back (a protocol error at the master). Cleared by a
  // failed read-back (the master assigns again) and by a new session (its view starts anew).
  let sentReceived = false;
  // Progress at the master's pace: its welcome and "pace" messages name the interval.
  const ticker = new ReportTicker(() => {
    const s = receiver.stats();
    progress.update(bytesHeld());
    if (current) {
      session.send({ type: "progress", held: s.heldChunks, bytes: s.bytesReceived, rate: s.rate });
    }
  }, o.every);

  const session: ControlSession = new ControlSession({
    masterUrl: o.masterUrl,
    hello: () => ({
      type: "hello",
      version: PROTOCOL_VERSION,
      role: "client",
      name: o.name,
      ...(o.mac ? { mac: o.mac } : {}),
      imageId,
      port: server.port,
      capacity: o.capacity,
      held: held(),
      complete: verified,
      disk: chosen.path,
      diskReason: chosen.reason.slice(0, 2048),
      ...(neighbor ? { switch: switchName(neighbor), switchPort: neighbor.port.value } : {}),
      ...(probe !== undefined ? { probe } : {}),
    }),
    onWelcome: (w) => {
      setTicketKey(w.ticketKey);
      address = w.address;
      sentReceived = false;
      ticker.follow(w);
      log("welcome", { id: w.id, mode: w.mode, address: w.address, progressMs: ticker.ms });
    },
    onMessage: (msg: MasterMessage) => {
      if (msg.type === "assign" && (sentReceived || verified)) {
        log("assign-ignored", { server: msg.server.id, why: "received already sent" });
      } else if (msg.type === "assign") void receive(msg.server.id, msg.server.url, msg.ticket);
      else if (msg.type === "end") finish({ verified, reason: msg.reason });
      else if (msg.type === "serve") log("serving", { clients: msg.clients.join(",") });
      else if (msg.type === "pace") {
        ticker.follow(msg);
        log("pace", { progressMs: ticker.ms });
      } else if (msg.type === "challenge") void prove(msg.nonce, msg.chunks);
      else if (msg.type === "proved") {
        log("proved", { counted: msg.counted });
        onProved?.();
      }
    },
    onFatal: (message) => finish({ verified, reason: `refused by the master: ${message}` }),
    log,
  });

  let onProved: (() => void) | undefined;
  let provedTimer: ReturnType<typeof setTimeout> | undefined;

  /** The master asks for proof that this disk holds the image: hash the chunks it names. */
  async function prove(nonce: string, chunks: number[]) {
    try {
      const bytes: Uint8Array[] = [];
      for (const i of chunks) bytes.push(await receiver.read(i, { waitMs: 0 }));
      session.send({ type: "proof", sha256: proofOf(nonce, bytes) });
    } catch (err) {
      log("proof-failed", { error: (err as Error).message });
    }
  }

  async function receive(serverId: string, url: string, ticket: string) {
    current?.abort.abort();
    const mine = { server: serverId, abort: new AbortController() };
    current = mine;
    servers.push(serverId);
    log("assigned", { server: serverId, url, missing: receiver.missing().length });
    try {
      await receiver.fetchFrom(url, { signal: mine.abort.signal, ticket });
    } catch (err) {
      if (current !== mine) return; // superseded by a newer assignment
      current = null;
      const e = err as ReceiveError;
      if (isDiskFailure(err)) return diskFailed(serverId, err);
      // The server's own words (e.remote) stay in this log: the master publishes failures.
      log("receive-failed", {
        server: serverId,
        reason: e.reason ?? "error",
        error: e.message,
        ...(e.remote ? { remote: e.remote } : {}),
      });
      session.send({
        type: "failed",
        server: serverId,
        reason: (e.reason ?? "error").slice(0, 64),
        detail: (e.message ?? String(err)).slice(0, 1024),
      });
      return;
    }
    if (current !== mine) return;
    current = null;
    const st = receiver.stats();
    session.send({ type: "progress", held: st.heldChunks, bytes: st.bytesReceived, rate: st.rate });
    session.send({ type: "received" });
    sentReceived = true;
    const t0 = performance.now();
    let bad: number[];
    try {
      bad = await receiver.readBack();
    } catch (err) {
      if (isDiskFailure(err)) return diskFailed(serverId, err);
      throw err;
    }
    const seconds = (performance.now() - t0) / 1000;
    if (bad.length === 0) {
      verified = true;
      progress.update(manifest.size);
      log("verified", { target: o.target, seconds: seconds.toFixed(2) });
      session.send({ type: "verified", ok: true, bad: [], seconds });
      // Reboot or power off only once the master has checked the proof (or gave no word in
      // PROVED_WAIT_MS): leaving earlier would end the session before it counts.
      if (o.after !== "serve") {
        const done = () => finish({ verified, reason: `imaged; ${o.after} next` });
        onProved = done;
        provedTimer = setTimeout(done, PROVED_WAIT_MS);
      }
    } else {
      log("readback-failed", { bad: bad.length });
      sentReceived = false;
      session.send({ type: "verified", ok: false, bad, seconds });
    }
  }

  /** The disk failed a write or read: tell the master (once per try), back off, or stop. */
  function diskFailed(serverId: string, e: ReceiveError) {
    diskFailures++;
    const last = diskFailures > diskRetries;
    const detail = `${e.message}${last ? ` (${diskFailures} tries: giving up)` : ""}`;
    log("disk-failed", { disk: chosen.path, attempt: diskFailures, of: diskRetries + 1, detail });
    session.send({
      type: "failed",
      server: serverId,
      reason: "disk",
      detail: detail.slice(0, 1024),
    });
    if (last) return finish({ verified: false, reason: detail, diskFailed: true });
    const wait = diskBackoff * 2 ** (diskFailures - 1);
    console.error(`Cascade: disk "${chosen.path}" failed (try ${diskFailures}): ${e.message}`);
    console.error(`Cascade: trying again in ${wait} s`);
    // Let "failed" go out first: the master then frees this client's server at the hang-up.
    setTimeout(() => session.rest(wait * 1000), 100);
  }

  session.start();
  const result = await finished;
  clearTimeout(provedTimer);
  ticker.stop();
  current?.abort.abort();
  await server.close();
  receiver.close();
  await receiver.stopScan();
  // Finish the disk once nothing reads it for others any more (it changes bytes of the image).
  const finishing: FinishOutcome[] = [];
  if (result.verified) {
    finishing.push(
      ...await finishDisk(target, {
        masterUrl: o.masterUrl,
        mac: o.mac,
        address,
        disk: chosen.path,
        imageId,
        log,
      }),
    );
    for (const f of finishing) {
      console.error(`Cascade: ${f.ok ? "" : "FAILED: "}${f.detail}`);
      session.send({ type: "finished", ok: f.ok, step: f.step, detail: f.detail.slice(0, 2048) });
    }
    // Give the last message a moment to leave before the session closes.
    if (finishing.length) await new Promise((r) => setTimeout(r, 200));
  }
  session.close();
  await target.sync().catch(() => {});
  target.close();
  const finishFailed = finishing.find((f) => !f.ok);
  if (result.diskFailed) throw new DiskError(result.reason);
  progress.finish(
    `${o.name}: ${result.verified ? "verified" : "NOT verified"} (${result.reason})`,
  );
  const s = receiver.stats();
  log("finished", {
    verified: result.verified,
    received: s.bytesReceived,
    refetched: s.bytesRefetched,
    servers: servers.join(","),
    reason: result.reason,
  });
  return {
    verified: result.verified && !finishFailed,
    reason: finishFailed ? finishFailed.detail : result.reason,
    disk: chosen.path,
    finish: finishing,
    bytesReceived: s.bytesReceived,
    bytesRefetched: s.bytesRefetched,
    servers,
  };
}
