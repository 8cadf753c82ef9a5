// The master's HTTP face: one Hono app on one port. Control sessions (WebSocket), the image's
// manifest, status JSON and the status page; boot files and the dashboard plug in here too.
import { Hono } from "hono";
import type { Manifest } from "../imagetools/manifest.ts";
import type { Logger } from "../imagetools/log.ts";
import { type MasterCore, type SessionKey } from "./master_core.ts";
import { parsePeerMessage, ProtocolError } from "./protocol.ts";
import { runStatus } from "./status.ts";
import { renderStatusPage } from "./status_page.ts";

export interface MasterAppOptions {
  core: MasterCore;
  manifest: Manifest;
  manifestBytes: Uint8Array;
  log: Logger;
  now: () => number;
  /** Extra routes mounted under /boot (netboot files), when built. */
  boot?: Hono;
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

export function createMasterApp(o: MasterAppOptions): Hono<{ Bindings: Deno.ServeHandlerInfo }> {
  const app = new Hono<{ Bindings: Deno.ServeHandlerInfo }>();
  const { core, manifest, manifestBytes } = o;

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

  app.get("/api/v1/manifest", () =>
    new Response(manifestBytes as BufferSource, {
      headers: { "content-type": "application/json", "x-cascade-image": core.config.imageId },
    }));

  app.get("/api/v1/image", (c) =>
    c.json({
      id: core.config.imageId,
      name: manifest.name,
      size: manifest.size,
      chunkSize: manifest.chunkSize,
      chunks: manifest.chunks.length,
      zeroChunks: manifest.chunks.filter((ch) => ch.zero).length,
      md5: manifest.md5,
      sha256: manifest.sha256,
    }));

  app.get("/api/v1/status", (c) => c.json(runStatus(core, manifest, o.now())));

  app.get("/", (c) => c.html(renderStatusPage(runStatus(core, manifest, o.now()))));

  if (o.boot) app.route("/boot", o.boot);

  app.notFound((c) => c.json({ error: `No such route: ${c.req.method} ${c.req.path}` }, 404));
  app.onError((err, c) => {
    o.log("http-error", { path: c.req.path, error: err.message });
    return c.json({ error: "Internal error in the master; see its log" }, 500);
  });
  return app;
}
