// Deno.serve for a LAN of strangers: requests capped per address and in total (slots.ts), and
// an accept loop that outlives its errors.
//
// Why our own code: Deno.serve and Hono have no connection or concurrency cap (Deno.serve shows
// requests, not connections), so a counter wraps the handler; and when accept fails (EMFILE:
// no descriptor left) Deno.serve's `finished` rejects and it stops accepting: unhandled, that
// rejection ends the process (measured: the master and every chunk server). Here it is caught
// and the server listens again on the same port (its open connections are still served).
import { type Logger, silentLogger } from "../../imagetools/kit/mod.ts";
import { AcceptBackoff } from "./accept_backoff.ts";
import { defaultLimits, type ServeLimits, SlotCounter } from "./slots.ts";

export type ServeHandler = (
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/** `handler` behind the counter: a request over a cap gets 503 at once. Requests `selfCounted`
 * names (a WebSocket route holding a slot per open socket) take their slot themselves. */
export function countedHandler(
  counter: SlotCounter,
  handler: ServeHandler,
  selfCounted?: (req: Request) => boolean,
): ServeHandler {
  return async (req, info) => {
    if (selfCounted?.(req)) return await handler(req, info);
    const address = info.remoteAddr.hostname;
    const slot = counter.take(address);
    if (!slot) {
      return Response.json({ error: counter.refusal(address) }, {
        status: 503,
        headers: { "retry-after": "1" },
      });
    }
    // The slot is held until the response is wholly sent (streams), or failed.
    const release = slot.release;
    info.completed.then(release, release);
    try {
      return await handler(req, info);
    } catch (err) {
      release();
      throw err;
    }
  };
}

export interface GuardedServer {
  addr: Deno.NetAddr;
  /** Times the accept loop failed and listened again. */
  restarts(): number;
  /** Graceful: stop accepting, let every response in flight finish. */
  shutdown(): Promise<void>;
}

/** Deno.serve on hostname:port with the caps, listening again whenever accept fails. */
export function guardedServe(o: {
  hostname: string;
  port: number;
  handler: ServeHandler;
  limits?: Partial<ServeLimits>;
  /** Share this counter (e.g. with WebSocket routes that hold a slot per open socket); null:
   * count nothing here (the master's front door counts its connections itself). */
  counter?: SlotCounter | null;
  /** Requests that take their own slot (see countedHandler). */
  selfCounted?: (req: Request) => boolean;
  /** The client's own address, when connections come through a relay of ours (the master's
   * front door) and the address Deno.serve sees is the relay's. */
  remoteAddr?: (seen: Deno.NetAddr) => Deno.NetAddr;
  log?: Logger;
  /** Names this server in its log lines. */
  name?: string;
}): GuardedServer {
  const log = o.log ?? silentLogger;
  const counter = o.counter === undefined ? new SlotCounter(defaultLimits(o.limits)) : o.counter;
  const counted = counter ? countedHandler(counter, o.handler, o.selfCounted) : o.handler;
  const addressOf = o.remoteAddr;
  const handler: ServeHandler = addressOf
    ? (req, info) =>
      counted(req, { remoteAddr: addressOf(info.remoteAddr), completed: info.completed })
    : counted;
  const servers: Deno.HttpServer<Deno.NetAddr>[] = [];
  const backoff = new AcceptBackoff(o.name, log);
  let stopping = false;
  let port = o.port;
  const listen = (): Deno.NetAddr => {
    const server = Deno.serve({ hostname: o.hostname, port, onListen: () => {} }, handler);
    servers.push(server);
    server.finished.catch(async (err: Error) => {
      // Listening again needs a descriptor too: wait until one is free.
      let e: unknown = err;
      while (!stopping) {
        await backoff.failed(e);
        if (stopping) return;
        try {
          backoff.ok(listen().port);
          return;
        } catch (again) {
          e = again;
        }
      }
    });
    return server.addr;
  };
  const addr = listen();
  port = addr.port;
  return {
    addr,
    restarts: () => backoff.restarts,
    async shutdown() {
      stopping = true;
      await Promise.all(servers.map((s) => s.shutdown().catch(() => {})));
    },
  };
}
