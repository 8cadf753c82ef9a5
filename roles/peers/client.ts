// The client role: get the manifest, wait for a server, receive and verify every chunk onto
// the target, read the whole disk back, then serve it on until the master ends the run.
// In relay mode its chunk server is up from the start and serves each chunk once verified.
import { imageIdOf, parseManifest } from "../../imagetools/mod.ts";
import type { Logger } from "../../imagetools/kit/mod.ts";
import { Progress, type ProgressMode } from "../../imagetools/kit/mod.ts";
import { startChunkServer } from "../data/mod.ts";
import { ControlSession } from "./control_session.ts";
import { rateLimited } from "../data/mod.ts";
import type { AfterAction, MasterMessage } from "../protocol/mod.ts";
import { PROTOCOL_VERSION, ticketValid } from "../protocol/mod.ts";
import { ReceiveError, Receiver } from "../data/mod.ts";
import { openTarget } from "../data/mod.ts";

export interface ClientOptions {
  masterUrl: string;
  target: string;
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
}

export interface ClientResult {
  verified: boolean;
  reason: string;
  bytesReceived: number;
  bytesRefetched: number;
  servers: string[];
}

/** Fetch the manifest from the master, retrying while it is not up yet (PCs may boot first). */
export async function fetchManifest(
  masterUrl: string,
  log: Logger,
  timeoutSeconds: number,
): Promise<Uint8Array> {
  const url = new URL("/api/v1/manifest", masterUrl).href;
  const start = performance.now();
  let delay = 250;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      if (res.ok) return new Uint8Array(await res.arrayBuffer());
      const body = await res.text();
      throw new Error(`HTTP ${res.status} ${body.slice(0, 200)}`);
    } catch (err) {
      const waited = (performance.now() - start) / 1000;
      if (timeoutSeconds > 0 && waited > timeoutSeconds) {
        throw new Error(
          `Cannot fetch the manifest from "${url}" after ${Math.round(waited)} s: ${
            (err as Error).message
          }`,
          { cause: err },
        );
      }
      log("waiting-for-master", { url, error: (err as Error).message });
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}

export async function runClient(o: ClientOptions): Promise<ClientResult> {
  const { log } = o;
  const manifestBytes = await fetchManifest(o.masterUrl, log, o.masterTimeout);
  const imageId = imageIdOf(manifestBytes);
  if (o.imageId && o.imageId !== imageId) {
    throw new Error(
      `Refusing image "${imageId}" from "${o.masterUrl}": this PC accepts only image "${o.imageId}"`,
    );
  }
  const manifest = parseManifest(new TextDecoder().decode(manifestBytes));
  let existed = false;
  try {
    existed = (await Deno.stat(o.target)).size > 0;
  } catch { /* a new file */ }
  const target = await openTarget(o.target, manifest.size, manifest.name);
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

  // A PC that was imaged (or half imaged) before a reboot resumes from what it verified.
  if (existed) {
    const n = await receiver.scanExisting();
    log("resume", { target: o.target, held: n, total: manifest.chunks.length });
  }
  await receiver.fillZeros();
  const served = o.rateLimit ? rateLimited(receiver, o.rateLimit) : receiver;
  // Serves only clients the master sent here: the key comes with each welcome.
  let ticketKey: string | null = null;
  const server = await startChunkServer({
    source: served,
    hostname: o.listen,
    port: 0,
    log,
    tickets: (ticket, address) => ticketKey !== null && ticketValid(ticketKey, ticket, address),
  });

  let verified = receiver.missing().length === 0 && existed;
  // The fetch in progress (a new assignment supersedes it).
  let current = null as { server: string; abort: AbortController } | null;
  const servers: string[] = [];
  let finish!: (r: { verified: boolean; reason: string }) => void;
  const finished = new Promise<{ verified: boolean; reason: string }>((r) => (finish = r));

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
    }),
    onWelcome: (w) => {
      ticketKey = w.ticketKey;
      log("welcome", { id: w.id, mode: w.mode, address: w.address });
    },
    onMessage: (msg: MasterMessage) => {
      if (msg.type === "assign") void receive(msg.server.id, msg.server.url, msg.ticket);
      else if (msg.type === "end") finish({ verified, reason: msg.reason });
      else if (msg.type === "serve") log("serving", { clients: msg.clients.join(",") });
    },
    onFatal: (message) => finish({ verified, reason: `refused by the master: ${message}` }),
    log,
  });

  const ticker = setInterval(() => {
    const s = receiver.stats();
    progress.update(bytesHeld());
    if (current) {
      session.send({ type: "progress", held: s.heldChunks, bytes: s.bytesReceived, rate: s.rate });
    }
  }, 1000);

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
      log("receive-failed", { server: serverId, reason: e.reason ?? "error", error: e.message });
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
    const t0 = performance.now();
    const bad = await receiver.readBack();
    const seconds = (performance.now() - t0) / 1000;
    if (bad.length === 0) {
      verified = true;
      progress.update(manifest.size);
      log("verified", { target: o.target, seconds: seconds.toFixed(2) });
      session.send({ type: "verified", ok: true, bad: [], seconds });
      if (o.after !== "serve") finish({ verified, reason: `imaged; ${o.after} next` });
    } else {
      log("readback-failed", { bad: bad.length });
      session.send({ type: "verified", ok: false, bad, seconds });
    }
  }

  session.start();
  const result = await finished;
  clearInterval(ticker);
  current?.abort.abort();
  session.close();
  await server.close();
  await target.sync();
  target.close();
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
    verified: result.verified,
    reason: result.reason,
    bytesReceived: s.bytesReceived,
    bytesRefetched: s.bytesRefetched,
    servers,
  };
}
