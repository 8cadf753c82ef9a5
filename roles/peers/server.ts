// The server roles: a PC that holds the image (its disk) or the fake server (the slices) serves
// chunks to whichever clients the master sends it, and stays registered until the run ends.
import type { Logger } from "../../imagetools/kit/mod.ts";
import type { ChunkSource } from "../data/mod.ts";
import { ControlSession } from "./control_session.ts";
import { startPeerChunkServer } from "./peer_chunk_server.ts";
import { PROTOCOL_VERSION } from "../protocol/mod.ts";

export interface ServerOptions {
  masterUrl: string;
  source: ChunkSource;
  role: "server" | "fake";
  name: string;
  capacity: number;
  token?: string;
  listen: string;
  /** Upload cap in bytes per second. */
  rateLimit?: number;
  /** This source's port rate, bytes/s (relay mode: the master starts that many chains). */
  portRate?: number;
  /** Advertise this URL instead of letting the master pair our port with the address it sees. */
  advertise?: string;
  log: Logger;
}

export interface ServerResult {
  reason: string;
  servedBytes: number;
}

export async function runServer(o: ServerOptions): Promise<ServerResult> {
  const { log, source } = o;
  const { server, setTicketKey } = await startPeerChunkServer({
    source: source,
    listen: o.listen,
    rateLimit: o.rateLimit,
    log,
  });
  let finish!: (reason: string) => void;
  const finished = new Promise<string>((r) => (finish = r));
  const session = new ControlSession({
    masterUrl: o.masterUrl,
    hello: () => ({
      type: "hello",
      version: PROTOCOL_VERSION,
      role: o.role,
      name: o.name,
      imageId: source.imageId,
      port: server.port,
      ...(o.advertise ? { url: o.advertise } : {}),
      capacity: o.capacity,
      held: source.heldCount(),
      complete: true,
      ...(o.token ? { token: o.token } : {}),
      ...(o.portRate ? { portRate: o.portRate } : {}),
    }),
    onWelcome: (w) => {
      setTicketKey(w.ticketKey);
      log("registered", { id: w.id, url: server.url, capacity: o.capacity });
    },
    onMessage: (msg) => {
      if (msg.type === "serve") log("serving", { clients: msg.clients.join(",") });
      else if (msg.type === "end") finish(msg.reason);
    },
    onFatal: (message) => finish(`refused by the master: ${message}`),
    log,
  });
  session.start();
  const reason = await finished;
  session.close();
  await server.close();
  return { reason, servedBytes: server.servedBytes() };
}
