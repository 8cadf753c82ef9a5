// The master's HTTP face: one Hono app on one port. Control sessions (WebSocket), each image's
// manifest, the live dashboard, status JSON and events (SSE), admin actions, /metrics; boot
// files plug in under /boot. With several images (site.ts), a request names its image's run
// with ?image=NAME (or its id); without it, it gets the first image's.
import { type Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Manifest } from "../../imagetools/mod.ts";
import type { Logger } from "../../imagetools/kit/mod.ts";
import { dashboardTitle, renderDashboardPage } from "./dashboard/mod.ts";
import { liveStatus } from "./live_status.ts";
import { runStatus } from "./status.ts";
import { eventRoutes, FeedHub } from "./events_stream.ts";
import { EncodedBody } from "../data/mod.ts";
import { manifestSources } from "./manifest_sources.ts";
import { adminDenied, AdminSessions, sessionRoutes } from "./admin_session.ts";
import { type AdminRecord, adminRoutes, type ReimageTarget } from "./admin_routes.ts";
import type { EventRecord, MasterCore } from "./core.ts";
import type { HistoryAdminAction } from "./history.ts";
import { type PortFigures, renderMetrics, renderPortMetrics, RunCounters } from "./metrics.ts";
import { type ImageRun, Site } from "./site.ts";
import { runLinks } from "./feed.ts";
import { probeRoutes } from "./probe_route.ts";
import { attachControlSocket, type ControlTarget } from "./control_socket.ts";

export { attachControlSocket, type ControlTarget };

export { adminDenied };
export { ADMIN_ACTIONS, type AdminAction, type AdminBody, parseAdminBody } from "./admin_routes.ts";

export interface MasterAppOptions {
  /** Every image's run (several images: site.ts); or, for one image, core and manifest. */
  site?: Site;
  core?: MasterCore;
  manifest?: Manifest;
  manifestBytes?: Uint8Array;
  log: Logger;
  now: () => number;
  /** Extra routes mounted under /boot (netboot files), when built. */
  boot?: Hono;
  /** Forget that PCs were imaged (one, "all", a group), so netboot images them again. */
  reimage?: (target: ReimageTarget) => number;
  /** Enrol every PC that network-boots in the next `minutes` (into `group`); returns seconds. */
  enrol?: (minutes: number, group?: string) => number;
  /** Keep an admin action (the run history), and read the latest back (newest first). */
  recordAdmin?: (r: AdminRecord) => void;
  adminLog?: () => HistoryAdminAction[];
  /** The groups file's group names (the page offers to re-image each). */
  groups?: string[];
  /** A PC's group by MAC (groups file, enrolment), for the dashboard's room. */
  groupOf?: (mac: string) => string | undefined;
  /** Boot answers a PC's MAC got in this run, oldest first (the details panel). */
  bootsOf?: (run: ImageRun, mac: string) => BootAnswer[];
  /** The port's descriptors and refusals (front_door.ts), for /metrics. */
  port?: () => PortFigures;
  /** Event stream pacing in ms: at most one update per `minGap`, at least one per `period`. */
  sse?: { minGap: number; period: number; maxViewers?: number };
}

/** One answer to a PC's boot request, as the details panel shows it. */
export interface BootAnswer {
  /** Seconds on the master's clock. */
  at: number;
  address: string;
  /** "image" or "local:<why>". */
  answer: string;
  group?: string;
}

/** What a control socket talks to: one image's core, or the site that routes by image. */

/** A site of one image, its name from the manifest's (made fit for a URL). */
export function singleSite(core: MasterCore, manifest: Manifest, manifestBytes: Uint8Array): Site {
  return new Site([{ name: imageNameOf(manifest.name), core, manifest, manifestBytes }]);
}

/** An image's default name on the master: its manifest name, with anything else than
 * A-Z a-z 0-9 . _ - made "-". */
export function imageNameOf(manifestName: string): string {
  const name = manifestName.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, 64);
  return name || "image";
}

function mentions(e: EventRecord, id: string): boolean {
  const f = e.fields;
  return f.peer === id || f.server === id ||
    (typeof f.clients === "string" && f.clients.split(",").includes(id));
}

/** What the app keeps per image's run: its viewers' hub, counters and encoded answers. */
interface RunView {
  run: ImageRun;
  status: () => ReturnType<typeof liveStatus>;
  hub: FeedHub;
  counters: RunCounters;
  manifestBody: EncodedBody;
  imageBody: EncodedBody;
}

export function createMasterApp(o: MasterAppOptions): Hono<{ Bindings: Deno.ServeHandlerInfo }> {
  const app = new Hono<{ Bindings: Deno.ServeHandlerInfo }>();
  const site = o.site ?? singleSite(o.core!, o.manifest!, o.manifestBytes!);
  const views = new Map<ImageRun, RunView>();
  for (const run of site.runs) views.set(run, runView(run, site, o));
  /** The run a request names (?image=NAME or id), the first image's when it names none. */
  const pick = (c: Context): RunView | Response => {
    const key = c.req.query("image");
    if (key === undefined || key === "") return views.get(site.main)!;
    const run = site.find(key);
    if (run) return views.get(run)!;
    return c.json({ error: `No image "${key}" on this master: it serves ${site.describe()}` }, 404);
  };

  // The control WebSocket is served by the front door (front_door.ts) when it is the first
  // request on its connection; what reaches the app here is answered, never upgraded.
  app.get("/api/v1/control", (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return c.json(
        { error: "This is the control WebSocket: connect with a WebSocket client" },
        426,
      );
    }
    return c.json({
      error: "The control WebSocket must be the first request on its connection: connect anew",
    }, 400);
  });

  probeRoutes(app);

  // Every PC fetches these at the start: encoded once, served compressed, cached by ETag.
  app.get("/api/v1/manifest", (c) => {
    const v = pick(c);
    if (v instanceof Response) return v;
    return v.manifestBody.respond(c, { "x-cascade-image": v.run.core.config.imageId });
  });
  // Which peers hold the manifest (manifest_sources.ts): the PC fetches it there and checks it.
  let sourceTurn = 0;
  app.get("/api/v1/manifest/sources", (c) => {
    const v = pick(c);
    if (v instanceof Response) return v;
    const sources = manifestSources(v.run.core.peers.values(), sourceTurn++);
    return c.json({ id: v.run.core.config.imageId, sources }, 200, { "cache-control": "no-store" });
  });
  app.get("/api/v1/image", (c) => {
    const v = pick(c);
    return v instanceof Response ? v : v.imageBody.respond(c);
  });

  app.get("/api/v1/status", (c) => {
    const v = pick(c);
    return v instanceof Response ? v : c.json(v.status());
  });

  // Every image's run at a glance: name, image, state, totals (the dashboard's run bar).
  app.get(
    "/api/v1/runs",
    (c) =>
      c.json({
        runs: runLinks(
          site.runs.map((r) => runStatus(r.core, r.manifest, o.now())),
          site.runs.map((r) => r.name),
        ),
      }),
  );

  app.get("/api/v1/peers/:id", (c) => {
    const v = pick(c);
    if (v instanceof Response) return v;
    const id = c.req.param("id");
    const { core } = v.run;
    const peer = v.status().peers.find((p) => p.id === id);
    if (!peer) return c.json({ error: `No peer "${id}" in this run` }, 404);
    return c.json({
      peer,
      events: core.events.filter((e) => mentions(e, id)),
      boot: peer.mac ? o.bootsOf?.(v.run, peer.mac) ?? bootEvents(core.events, peer.mac) : [],
      startedAt: core.startedAt,
    });
  });

  // Viewers (the dashboard's feed, the status stream): one tick per run for all of them.
  eventRoutes(app, (c) => {
    const v = pick(c);
    return v instanceof Response ? v : v.hub;
  }, o.sse?.maxViewers);

  // Admins sign in from the page (admin_session.ts); curl keeps its bearer token.
  const sessions = new AdminSessions(o.now);
  // The admin actions the history kept: open to read, like the dashboard.
  app.get("/api/v1/admin/log", (c) => {
    c.header("cache-control", "no-store");
    return c.json({ kept: o.adminLog !== undefined, actions: o.adminLog?.() ?? [] });
  });
  const token = site.main.core.config.token;
  sessionRoutes(app, { sessions, token, log: o.log, now: o.now });
  adminRoutes(app, {
    site,
    sessions,
    token,
    ...(o.reimage ? { reimage: o.reimage } : {}),
    ...(o.enrol ? { enrol: o.enrol } : {}),
    ...(o.recordAdmin ? { record: o.recordAdmin } : {}),
  });

  // Every image's run, each series labelled image="NAME" (?image=NAME: that run's alone).
  app.get("/metrics", (c) => {
    const key = c.req.query("image");
    const v = key ? pick(c) : undefined;
    if (v instanceof Response) return v;
    const shown = v ? [v] : site.runs.map((r) => views.get(r)!);
    const runs = shown.map((x) => ({
      name: x.run.name,
      status: x.status(),
      counters: x.counters,
      refusedFull: x.run.core.fullRefusals.total,
    }));
    const port = o.port ? renderPortMetrics(o.port()) : "";
    return c.body(renderMetrics(runs) + port, 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    });
  });

  app.get("/", (c) => {
    const v = pick(c);
    if (v instanceof Response) return v;
    return c.html(renderDashboardPage(v.hub.snapshot(), dashboardTitle(v.status())), 200, {
      // Everything the page needs is inline or from this master; the policy keeps it so.
      "content-security-policy":
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; " +
        "connect-src 'self'; img-src 'self' data:",
    });
  });

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

function runView(run: ImageRun, site: Site, o: MasterAppOptions): RunView {
  const { core, manifest } = run;
  const counters = new RunCounters();
  core.subscribe((e) => counters.observe(e));
  const status = () => liveStatus(core, manifest, o.now());
  const id = core.config.imageId;
  const summary = {
    id,
    name: manifest.name,
    size: manifest.size,
    chunkSize: manifest.chunkSize,
    chunks: manifest.chunks.length,
    zeroChunks: manifest.chunks.filter((ch) => ch.zero).length,
    md5: manifest.md5,
    sha256: manifest.sha256,
  };
  const hub = new FeedHub({
    status,
    subscribe: (fn) => core.subscribe(fn),
    pace: o.sse ?? { minGap: 250, period: 1000 },
    // Tiles group by the PC's group (groups file, enrolment), else by its switch (LLDP, topology).
    groupOf: (p) => (p.mac ? o.groupOf?.(p.mac) : undefined) ?? core.peers.get(p.id)?.switch,
    // With several images the page shows which run it follows and links the others.
    extra: () => ({
      ...(site.runs.length > 1
        ? {
          name: run.name,
          site: runLinks(
            site.runs.map((r) => runStatus(r.core, r.manifest, o.now())),
            site.runs.map((r) => r.name),
          ),
        }
        : {}),
      ...(o.groups?.length ? { groups: o.groups } : {}),
    }),
  });
  return {
    run,
    status,
    hub,
    counters,
    manifestBody: new EncodedBody(run.manifestBytes, "application/json", id),
    imageBody: new EncodedBody(
      new TextEncoder().encode(JSON.stringify(summary)),
      "application/json",
      `${id}-summary`,
    ),
  };
}

/** A PC's boot answers from the run's recent events (when no history keeps them all). */
function bootEvents(events: readonly EventRecord[], mac: string): BootAnswer[] {
  return events.filter((e) => e.event === "boot" && e.fields.peer === mac).map((e) => ({
    at: e.at,
    address: String(e.fields.address ?? ""),
    answer: String(e.fields.answer),
    ...(e.fields.group !== undefined ? { group: String(e.fields.group) } : {}),
  }));
}
