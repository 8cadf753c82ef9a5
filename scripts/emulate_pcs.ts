// Emulated lab PCs against a real master: control sessions only (no chunk moves), with the
// reports a real client makes (hello, a progress report every PROGRESS_MS (0.5 s) while
// receiving, or as often as the master's welcome and "pace" messages say, received, verified). A PC receives at --rate chunks/s, never ahead of the PC that serves it (so a relay
// chain moves as a pipeline, as in a real room), and reconnects with its progress after a lost
// session, as the real client does. The dashboard test and bench_dashboard.ts drive it.
//
//   deno run -A scripts/emulate_pcs.ts --master http://127.0.0.1:8080 --pcs 700
import { parseArgs } from "node:util";
import { openSlicesSource } from "../roles/data/mod.ts";
import { ProofHasher } from "../roles/master/mod.ts";
import { PROGRESS_MS } from "../roles/peers/mod.ts";

export interface EmulateOptions {
  master: string;
  pcs: number;
  /** Name prefix; PC i is `${prefix}${i}` padded to 4 digits. */
  prefix?: string;
  /** Chunks per second each PC receives at (capped by its server's progress). */
  rate?: number;
  /** PCs (by index from 1) that fail after 2 chunks: a bad chunk from their server, then they leave. */
  fail?: number[];
  /** The server token, for the emulated fake server (PCs need none). */
  serverToken?: string;
  /** A token in every hello: masters from before the trust split wanted the lab token there. */
  helloToken?: string;
  /** Also connect one emulated fake server. */
  fake?: boolean;
  /** Fetch the manifest first, as the real client does (bytes count in `stats`). */
  manifest?: boolean;
  /** Report every half second whatever the master says (a client from before "pace"). */
  fixedPace?: boolean;
  /** Seconds a read-back takes. */
  readback?: number;
  /** The image's slices: the PCs answer the master's challenges from them, as a real PC
   * answers from its disk (without, a PC never counts as verified: the master takes no claim
   * on faith). */
  slices?: string;
  log?: (line: string) => void;
}

export interface EmulateStats {
  /** Sessions that closed without the master ending the run (each reconnects). */
  dropped: number;
  /** "error" messages the master sent (protocol errors). */
  errors: string[];
  /** Assignments (a PC re-assigned after a failure counts again), and PCs assigned at least once. */
  assigned: number;
  assignedPcs: number;
  /** "received"s sent (a PC that holds every chunk; its read-back and proof follow). */
  received: number;
  /** PCs that sent "verified" (each counted once). */
  verified: number;
  ended: number;
  manifestBytes: number;
  /** Sessions opened (a reconnect counts again), and "welcome"s heard: where a slow join waits. */
  opened: number;
  welcomed: number;
}

export interface Emulation {
  stats: EmulateStats;
  /** Resolves when every PC has heard "end" (or failed as told). */
  done: Promise<void>;
  close(): void;
}

const VERSION = 1;

function mac(i: number): string {
  const h = i.toString(16).padStart(4, "0");
  return `52:54:00:ee:${h.slice(0, 2)}:${h.slice(2)}`;
}

export async function emulatePcs(o: EmulateOptions): Promise<Emulation> {
  const image = await (await fetch(new URL("/api/v1/image", o.master))).json() as {
    id: string;
    chunks: number;
    chunkSize: number;
  };
  const prefix = o.prefix ?? "pc-";
  const rate = o.rate ?? 10;
  const fail = new Set(o.fail ?? []);
  const stats: EmulateStats = {
    dropped: 0,
    errors: [],
    assigned: 0,
    assignedPcs: 0,
    received: 0,
    verified: 0,
    ended: 0,
    manifestBytes: 0,
    opened: 0,
    welcomed: 0,
  };
  const source = o.slices ? await openSlicesSource(o.slices) : undefined;
  // Answers are hashed in a worker, as the master hashes its own: 1,500 PCs finishing at once
  // are 4.5 GB of SHA-256, which on this thread would starve every emulated session.
  const hasher = source ? new ProofHasher() : undefined;
  // Each PC's chunks, and since when it moves at `rate` (so a PC downstream reads its server's
  // progress as of now, not as of its last report: a chain does not lag a report per hop).
  const progress = new Map<string, { n: number; at: number; moving: boolean }>();
  const clock = () => performance.now() / 1000;
  const heldNow = (name: string) => {
    const p = progress.get(name);
    if (!p) return image.chunks; // a server this emulation does not run holds everything
    return p.moving ? Math.min(image.chunks, p.n + rate * (clock() - p.at)) : p.n;
  };
  const held = {
    get: (name: string) => progress.get(name)?.n,
    set: (name: string, n: number, moving = false) =>
      progress.set(name, { n, at: clock(), moving }),
    has: (name: string) => progress.has(name),
  };
  const assignedPcs = new Set<string>();
  const wsUrl = new URL("/api/v1/control", o.master);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  let closing = false;
  const sockets = new Set<WebSocket>();
  const timers = new Set<ReturnType<typeof setInterval>>();
  const finished: Promise<void>[] = [];

  const peer = (i: number, role: "client" | "fake") =>
    new Promise<void>((resolve) => {
      const name = role === "fake" ? "fake-server" : `${prefix}${String(i).padStart(4, "0")}`;
      if (!held.has(name)) held.set(name, role === "fake" ? image.chunks : 0);
      let over = false;
      let verified = false;
      let backoff = 200;
      const connect = () => {
        const ws = new WebSocket(wsUrl);
        sockets.add(ws);
        let server: string | null = null;
        let tick: ReturnType<typeof setInterval> | undefined;
        let bytes = 0;
        // The master's pace (welcome, "pace"); --fixed-pace keeps the half second, as an old client.
        let every = PROGRESS_MS;
        let report = () => {};
        const restart = () => {
          if (tick === undefined) return;
          clearInterval(tick), timers.delete(tick);
          tick = setInterval(() => report(), every);
          timers.add(tick);
        };
        // Once "received" is sent this session is finishing: a late assign (the master moved the
        // PC while the message was on the wire) is not acted on, as the real client does.
        let finishing = false;
        const send = (m: unknown) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(m));
        const stop = () => {
          if (tick !== undefined) clearInterval(tick), timers.delete(tick);
          tick = undefined;
          const n = held.get(name);
          if (n !== undefined) held.set(name, n, false);
        };
        ws.onopen = () => {
          stats.opened++;
          backoff = 200;
          send({
            type: "hello",
            version: VERSION,
            role,
            name,
            mac: role === "client" ? mac(i) : undefined,
            imageId: image.id,
            // No data moves: a port the master pairs with 127.0.0.1 (a client may not name a URL).
            port: 9,
            capacity: role === "fake" ? 2 : 3,
            held: Math.floor(held.get(name)!),
            complete: role === "fake" || verified,
            ...(role === "fake" && o.serverToken ? { token: o.serverToken } : {}),
            ...(o.helloToken ? { token: o.helloToken } : {}),
          });
        };
        ws.onmessage = (ev) => {
          const msg = JSON.parse(ev.data as string);
          if (msg.type === "error") stats.errors.push(`${name}: ${msg.message}`);
          if (msg.type === "welcome") stats.welcomed++;
          if ((msg.type === "welcome" || msg.type === "pace") && !o.fixedPace) {
            if (typeof msg.progressMs === "number" && msg.progressMs !== every) {
              every = msg.progressMs;
              restart();
            }
          }
          if (msg.type === "challenge" && source) {
            const bytes = Promise.all((msg.chunks as number[]).map((c) => source!.read(c)));
            bytes.then((b) => hasher!.proof(msg.nonce, b))
              .then((sha256) => send({ type: "proof", sha256 }), () => {});
          }
          if (msg.type === "end") {
            over = true;
            stats.ended++;
            stop();
            ws.close();
          }
          if (msg.type !== "assign" || role !== "client" || finishing) return;
          stats.assigned++;
          assignedPcs.add(name);
          stats.assignedPcs = assignedPcs.size;
          server = msg.server.id as string;
          stop();
          held.set(name, held.get(name)!, true);
          const t0 = performance.now();
          let last = Math.floor(held.get(name)!);
          report = () => {
            // Fractional chunks are kept (a half-second of 5 chunks/s is 2.5); whole ones reported.
            const mine = held.get(name)!;
            // A PC keeps what it holds: a server that holds less (after a re-attach) only stalls it.
            const next = Math.max(
              mine,
              Math.min(image.chunks, heldNow(server!), mine + rate * every / 1000),
            );
            held.set(name, next, next < image.chunks);
            bytes += (Math.floor(next) - Math.floor(mine)) * image.chunkSize;
            if (fail.has(i) && next >= Math.min(2, image.chunks)) {
              stop();
              send({
                type: "failed",
                server,
                reason: "bad-chunk",
                detail: `Chunk ${next} failed its SHA-256 check from "${server}"`,
              });
              over = true;
              held.set(name, held.get(name)!, false);
              setTimeout(() => ws.close(), 100);
              return;
            }
            send({
              type: "progress",
              held: Math.floor(next),
              bytes,
              rate: Math.round((Math.floor(next) - last) * image.chunkSize * 1000 / every),
            });
            last = Math.floor(next);
            if (next < image.chunks) return;
            stop();
            finishing = true;
            stats.received++;
            send({ type: "received" });
            setTimeout(() => {
              if (!verified) stats.verified++;
              verified = true;
              send({
                type: "verified",
                ok: true,
                bad: [],
                seconds: (performance.now() - t0) / 1000,
              });
            }, (o.readback ?? 0.5) * 1000);
            // As often as the real client (the master's pace): the stall rule (2 reports without a
            // byte while the upstream moves) assumes it; at one report a second against the half
            // second's thresholds, any report late under load made a PC "stalled", and a demoted
            // PC at a chain's tail held up every later one.
          };
          tick = setInterval(() => report(), every);
          timers.add(tick);
        };
        ws.onerror = () => {};
        ws.onclose = () => {
          stop();
          sockets.delete(ws);
          if (over || closing) return resolve();
          stats.dropped++;
          o.log?.(`dropped ${name}`);
          setTimeout(connect, backoff);
          backoff = Math.min(backoff * 2, 5000);
        };
      };
      connect();
    });

  if (o.fake) finished.push(peer(0, "fake"));
  for (let i = 1; i <= o.pcs; i++) {
    if (o.manifest) {
      const res = await fetch(new URL("/api/v1/manifest", o.master));
      stats.manifestBytes += (await res.arrayBuffer()).byteLength;
    }
    finished.push(peer(i, "client"));
  }
  return {
    stats,
    done: Promise.all(finished).then(() => {}),
    close() {
      closing = true;
      hasher?.close();
      for (const t of timers) clearInterval(t);
      for (const ws of sockets) ws.close();
    },
  };
}

const HELP = `Emulated lab PCs: control sessions against a real master, no data moves.

USAGE
  deno run -A scripts/emulate_pcs.ts --master URL [OPTIONS]

OPTIONS
  --master URL     the master (required)
  --pcs N          how many PCs (default 100)
  --rate N         chunks per second each PC receives at (default 10)
  --fail LIST      PCs that fail, by number: 3,17 (default none)
  --fake           also connect an emulated fake server
  --server-token T the fake server's credential (CASCADE_SERVER_TOKEN)
  --slices DIR     the image's slices: PCs answer the master's proof challenges from them
                   (without, no PC counts as verified)
  --help           this text
`;

if (import.meta.main) {
  const { values: v } = parseArgs({
    options: {
      master: { type: "string" },
      pcs: { type: "string", default: "100" },
      rate: { type: "string", default: "10" },
      fail: { type: "string", default: "" },
      fake: { type: "boolean", default: false },
      "server-token": { type: "string" },
      slices: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (v.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  if (!v.master) {
    console.error('Missing "--master URL" (see --help)');
    Deno.exit(2);
  }
  const pcs = Number(v.pcs);
  if (!Number.isInteger(pcs) || pcs < 1) {
    console.error(`Invalid "--pcs" ${JSON.stringify(v.pcs)}: expected a whole number ≥ 1`);
    Deno.exit(2);
  }
  const em = await emulatePcs({
    master: v.master,
    pcs,
    rate: Number(v.rate),
    fail: v.fail ? v.fail.split(",").map(Number) : [],
    fake: v.fake,
    serverToken: v["server-token"] ?? Deno.env.get("CASCADE_SERVER_TOKEN"),
    slices: v.slices,
    log: (l) => console.log(l),
  });
  const show = setInterval(() => console.log(`emulate ${JSON.stringify(em.stats)}`), 2000);
  Deno.addSignalListener("SIGINT", () => {
    em.close();
    Deno.exit(130);
  });
  await em.done;
  em.close();
  clearInterval(show);
  console.log(`emulate-done ${JSON.stringify({ ...em.stats, errors: em.stats.errors.length })}`);
}
