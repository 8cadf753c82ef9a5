// The server roles: a PC that holds the image (its disk) or the fake server (the slices) serves
// chunks to whichever clients the master sends it, and stays registered until the run ends.
import type { Logger } from "../../imagetools/kit/mod.ts";
import type { ChunkSource } from "../data/mod.ts";
import { startChunkServer } from "../data/mod.ts";
import { ControlSession } from "./control_session.ts";
import { rateLimited } from "../data/mod.ts";
import { PROTOCOL_VERSION, ticketValid } from "../protocol/mod.ts";

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
  const served = o.rateLimit ? rateLimited(source, o.rateLimit) : source;
  // Serves only clients the master sent here: the key comes with each welcome.
  let ticketKey: string | null = null;
  const server = await startChunkServer({
    source: served,
    hostname: o.listen,
    port: 0,
    log,
    tickets: (ticket, address) => ticketKey !== null && ticketValid(ticketKey, ticket, address),
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
      ticketKey = w.ticketKey;
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
