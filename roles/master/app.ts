// The master's HTTP face: one Hono app on one port. Control sessions (WebSocket), the image's
// manifest, the live dashboard, status JSON and events (SSE), admin actions, /metrics; boot
// files plug in under /boot.
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { normalizeMac } from "../../netboot/mod.ts";
import type { Manifest } from "../../imagetools/mod.ts";
import type { Logger } from "../../imagetools/kit/mod.ts";
import { dashboardTitle, renderDashboardPage } from "./dashboard/mod.ts";
import { liveStatus } from "./live_status.ts";
import { eventRoutes, FeedHub } from "./events_stream.ts";
import { EncodedBody } from "./manifest_route.ts";
import { adminDenied, AdminSessions, checkAdmin, sessionRoutes } from "./admin_session.ts";
import { type EventRecord, type MasterCore, type SessionKey } from "./core.ts";
import { renderMetrics, RunCounters } from "./metrics.ts";
import { parsePeerMessage, ProtocolError } from "../protocol/mod.ts";

export interface MasterAppOptions {
  core: MasterCore;
  manifest: Manifest;
  manifestBytes: Uint8Array;
  log: Logger;
  now: () => number;
  /** Extra routes mounted under /boot (netboot files), when built. */
  boot?: Hono;
  /** Forget that a PC (or "all") was imaged, so netboot images it again; returns how many. */
  reimage?: (mac: string) => number;
  /** Enrol every PC that network-boots in the next `minutes` (into `group`); returns seconds. */
  enrol?: (minutes: number, group?: string) => number;
  /** A PC's group by MAC (groups file, enrolment), for the dashboard's room. */
  groupOf?: (mac: string) => string | undefined;
  /** Event stream pacing in ms: at most one update per `minGap`, at least one per `period`. */
  sse?: { minGap: number; period: number };
}

/** Wire a WebSocket to the core: every message validated, a bad one closes only its session. */
export function attachControlSocket(
  core: MasterCore,
  socket: WebSocket,
  address: string,
  log: Logger,
) {
  const key: SessionKey = socket;
  socket.onopen = () => core.connect(key, address);
  socket.onmessage = (ev) => {
    try {
      const data = ev.data as string | ArrayBuffer;
      core.message(key, parsePeerMessage(data));
    } catch (err) {
      if (err instanceof ProtocolError) core.reject(key, err.message);
      else {
        // A bug of ours must not take the master down: log it and drop that session only.
        log("internal-error", { address, error: (err as Error).stack ?? String(err) });
        core.reject(key, "Internal error in the master; see its log");
      }
    }
  };
  socket.onclose = () => core.disconnect(key);
  socket.onerror = () => {/* onclose follows */};
}

/** The probe blob: 1 MiB, 88 ms at 100 Mbit/s, 0.9 s at 10 Mbit/s (random: nothing shrinks it). */
export const PROBE_BYTES = 1 << 20;
const PROBE_PIECE = 64 * 1024;
const PROBE_QUEUE = 64;
const PROBE_BLOB = (() => {
  const b = new Uint8Array(PROBE_BYTES);
  for (let off = 0; off < b.length; off += PROBE_PIECE) {
    crypto.getRandomValues(b.subarray(off, off + PROBE_PIECE));
  }
  return b;
})();

export const ADMIN_ACTIONS = ["pause", "resume", "drain", "end", "reimage", "enrol"] as const;
export type AdminAction = typeof ADMIN_ACTIONS[number];

export { adminDenied };

export interface AdminBody {
  reason?: string;
  mac?: string;
  minutes?: number;
  group?: string;
}

/** An admin request's body: empty, or a JSON object with the action's fields. */
export function parseAdminBody(
  action: AdminAction,
  text: string,
): AdminBody {
  if (text.trim() === "") {
    if (action === "reimage") throw new TypeError('Missing field "mac" (a MAC, or "all")');
    if (action === "enrol") throw new TypeError('Missing field "minutes" (1 to 1440)');
    return {};
  }
  if (text.length > 4096) throw new RangeError(`Body of ${text.length} bytes is over 4096 bytes`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new SyntaxError(`Body is not JSON: ${JSON.stringify(text.slice(0, 40))}`, {
      cause: err,
    });
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new TypeError("Body must be a JSON object");
  }
  const allowed = action === "end"
    ? ["reason"]
    : action === "reimage"
    ? ["mac"]
    : action === "enrol"
    ? ["minutes", "group"]
    : [];
  for (const [k, value] of Object.entries(v)) {
    if (!allowed.includes(k)) throw new TypeError(`Unknown field "${k}" for "${action}"`);
    if (k === "minutes") {
      if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 1440) {
        throw new TypeError(`Field "minutes" (${JSON.stringify(value)}) must be 1 to 1440`);
      }
      continue;
    }
    if (typeof value !== "string" || value.length < 1 || value.length > 200) {
      throw new TypeError(`Field "${k}" must be a string of 1..200 characters`);
    }
  }
  const body = v as AdminBody;
  if (action === "enrol" && body.minutes === undefined) {
    throw new TypeError('Missing field "minutes" (1 to 1440)');
  }
  if (action === "reimage") {
    const mac = body.mac === "all" ? "all" : normalizeMac(body.mac ?? "");
    if (!mac) {
      throw new TypeError(
        `Field "mac" (${JSON.stringify(body.mac) ?? "missing"}) must be a MAC or "all"`,
      );
    }
    body.mac = mac;
  }
  return body;
}

function mentions(e: EventRecord, id: string): boolean {
  const f = e.fields;
  return f.peer === id || f.server === id ||
    (typeof f.clients === "string" && f.clients.split(",").includes(id));
}

export function createMasterApp(o: MasterAppOptions): Hono<{ Bindings: Deno.ServeHandlerInfo }> {
  const app = new Hono<{ Bindings: Deno.ServeHandlerInfo }>();
  const { core, manifest, manifestBytes } = o;
  const counters = new RunCounters();
  core.subscribe((e) => counters.observe(e));
  const status = () => liveStatus(core, manifest, o.now());
  let probing = 0;
  let probeTail = Promise.resolve();

  app.get("/api/v1/control", (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return c.json(
        { error: "This is the control WebSocket: connect with a WebSocket client" },
        426,
      );
    }
    const addr = c.env?.remoteAddr as Deno.NetAddr | undefined;
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw, { idleTimeout: 60 });
    attachControlSocket(core, socket, addr?.hostname ?? "unknown", o.log);
    return response;
  });

  // The probe (roles/peers/probe.ts): a fixed blob, one PC at a time, so each PC times its own
  // port and not a share of the master's. Bounded: a queue of PROBE_QUEUE, the rest get 503.
  app.get("/api/v1/probe", async (c) => {
    if (probing >= PROBE_QUEUE) return c.json({ error: "Probe queue full: try later" }, 503);
    probing++;
    const turn = probeTail;
    let release!: () => void;
    probeTail = new Promise<void>((r) => (release = r));
    await turn;
    let ended = false;
    const done = () => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      probing--;
      release();
    };
    // The next PC's turn comes when the last piece is taken (the socket's backpressure paces
    // the pieces, so about a socket buffer is still on the wire), or when this one goes away.
    const timer = setTimeout(done, 10_000);
    let off = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(ctl) {
        ctl.enqueue(PROBE_BLOB.subarray(off, off + PROBE_PIECE));
        off += PROBE_PIECE;
        if (off >= PROBE_BLOB.length) {
          ctl.close();
          done();
        }
      },
      cancel: done,
    }, { highWaterMark: 0 });
    return new Response(body, {
      headers: { "content-type": "application/octet-stream", "cache-control": "no-store" },
    });
  });

  // Every PC fetches these at the start: encoded once, served compressed, cached by ETag.
  const manifestBody = new EncodedBody(manifestBytes, "application/json", core.config.imageId);
  app.get(
    "/api/v1/manifest",
    (c) => manifestBody.respond(c, { "x-cascade-image": core.config.imageId }),
  );
  const imageBody = new EncodedBody(
    new TextEncoder().encode(JSON.stringify({
      id: core.config.imageId,
      name: manifest.name,
      size: manifest.size,
      chunkSize: manifest.chunkSize,
      chunks: manifest.chunks.length,
      zeroChunks: manifest.chunks.filter((ch) => ch.zero).length,
      md5: manifest.md5,
      sha256: manifest.sha256,
    })),
    "application/json",
    `${core.config.imageId}-summary`,
  );
  app.get("/api/v1/image", (c) => imageBody.respond(c));

  app.get("/api/v1/status", (c) => c.json(status()));

  app.get("/api/v1/peers/:id", (c) => {
    const id = c.req.param("id");
    const peer = status().peers.find((p) => p.id === id);
    if (!peer) return c.json({ error: `No peer "${id}" in this run` }, 404);
    return c.json({
      peer,
      events: core.events.filter((e) => mentions(e, id)),
      startedAt: core.startedAt,
    });
  });

  // Viewers (the dashboard's feed, the status stream): one tick for all of them.
  const hub = new FeedHub({
    status,
    subscribe: (fn) => core.subscribe(fn),
    pace: o.sse ?? { minGap: 250, period: 1000 },
    // Tiles group by the PC's group (groups file, enrolment), else by its switch (LLDP, topology).
    groupOf: (p) => (p.mac ? o.groupOf?.(p.mac) : undefined) ?? core.peers.get(p.id)?.switch,
  });
  eventRoutes(app, hub);

  // Admins sign in from the page (admin_session.ts); curl keeps its bearer token.
  const sessions = new AdminSessions(o.now);
  sessionRoutes(app, { sessions, token: core.config.token, log: o.log, now: o.now });

  app.post("/api/v1/admin/:action", async (c) => {
    const action = c.req.param("action") as AdminAction;
    if (!ADMIN_ACTIONS.includes(action)) {
      return c.json(
        { error: `No admin action "${action}": expected ${ADMIN_ACTIONS.join(", ")}` },
        404,
      );
    }
    // The admin token as a bearer token (curl), or a signed-in page's session and CSRF token.
    const check = checkAdmin(c, sessions, core.config.token);
    if (!check.ok) {
      if (check.status === 401) c.header("WWW-Authenticate", 'Bearer realm="cascade"');
      return c.json({ error: check.message }, check.status);
    }
    const by = check.who;
    let body: AdminBody;
    try {
      body = parseAdminBody(action, await c.req.text());
    } catch (err) {
      return c.json({ error: `Invalid "${action}" request: ${(err as Error).message}` }, 400);
    }
    if (action === "reimage") {
      // Not tied to the run: it changes what PCs boot next time, even between runs.
      if (!o.reimage) {
        return c.json(
          { error: "Re-imaging needs the run history: start without --no-history" },
          409,
        );
      }
      const forgotten = o.reimage(body.mac!);
      core.note("admin", { action, by, mac: body.mac, forgotten });
      return c.json({ mac: body.mac, forgotten });
    }
    if (action === "enrol") {
      if (!o.enrol) {
        return c.json({ error: "Enrolment needs the boot files: start with --netboot DIR" }, 409);
      }
      let seconds: number;
      try {
        seconds = o.enrol(body.minutes!, body.group);
      } catch (err) {
        return c.json({ error: `Invalid "enrol" request: ${(err as Error).message}` }, 400);
      }
      core.note("admin", { action, by, minutes: body.minutes, group: body.group });
      return c.json({ enrolling: true, seconds: Math.round(seconds), group: body.group ?? null });
    }
    if (core.ended) return c.json({ error: `The run has ended: ${core.ended}` }, 409);
    const paused = () => core.scheduler.snapshot().paused;
    switch (action) {
      case "pause":
        if (!paused()) core.pause(true);
        break;
      case "resume":
        if (paused()) core.pause(false);
        if (core.draining) core.drain(false);
        break;
      case "drain":
        if (!core.draining) core.drain(true);
        break;
      case "end":
        // Noted before the end, so the run's last events say who ended it.
        core.note("admin", { action, by, reason: body.reason });
        core.end(body.reason ?? "ended by an admin");
        break;
    }
    if (action !== "end") core.note("admin", { action, by });
    return c.json({ paused: paused(), draining: core.draining, ended: core.ended });
  });

  app.get("/metrics", (c) =>
    c.body(renderMetrics(status(), counters), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    }));

  app.get("/", (c) =>
    c.html(renderDashboardPage(hub.snapshot(), dashboardTitle(status())), 200, {
      // Everything the page needs is inline or from this master; the policy keeps it so.
      "content-security-policy":
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; " +
        "connect-src 'self'; img-src 'self' data:",
    }));

  if (o.boot) app.route("/boot", o.boot);

  app.notFound((c) => c.json({ error: `No such route: ${c.req.method} ${c.req.path}` }, 404));
  app.onError((err, c) => {
    // A refusal from a middleware (Hono's csrf) is an answer, not an internal error.
    if (err instanceof HTTPException) return err.getResponse();
    o.log("http-error", { path: c.req.path, error: err.message });
    return c.json({ error: "Internal error in the master; see its log" }, 500);
  });
  return app;
}
