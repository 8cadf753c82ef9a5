// Deno.serve for a LAN of strangers: requests capped per address and in total (a stranger
// cannot hold every descriptor), and an accept loop that outlives its errors.
//
// Why our own code: Deno.serve and Hono have no connection or concurrency cap (Deno.serve shows
// requests, not connections), so a counter wraps the handler; and when accept fails (EMFILE:
// no descriptor left) Deno.serve's `finished` rejects and it stops accepting: unhandled, that
// rejection ends the process (measured: the master and every chunk server). Here it is caught
// and the server listens again on the same port (its open connections are still served).
import { type Logger, silentLogger } from "../../imagetools/kit/mod.ts";

export interface ServeLimits {
  /** Requests in flight at once from one address (default 64). */
  perAddress: number;
  /** Requests in flight at once in all (default: 3/4 of the descriptor limit, at most 4096). */
  total: number;
}

/** The soft limit on open files of this process (Linux /proc), or null where unknown. */
export function openFileLimit(): number | null {
  try {
    const text = Deno.readTextFileSync("/proc/self/limits");
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    if (!m) return null;
    return m[1] === "unlimited" ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/** Limits below this process's descriptor limit (a quarter is left for files, sockets out). */
export function defaultLimits(given: Partial<ServeLimits> = {}): ServeLimits {
  const fds = openFileLimit() ?? 4096;
  const total = given.total ?? Math.max(8, Math.min(4096, Math.floor(fds * 0.75)));
  const perAddress = given.perAddress ?? Math.min(64, total);
  for (const [k, v] of Object.entries({ perAddress, total })) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`Invalid connection cap ${k} "${v}": must be a whole number >= 1`);
    }
  }
  return { perAddress, total };
}

/** Counts requests in flight per address; refuses past the caps. */
export class RequestCounter {
  readonly #byAddress = new Map<string, number>();
  #total = 0;
  constructor(readonly limits: ServeLimits) {}

  get total(): number {
    return this.#total;
  }

  /** Take a slot for `address`; null when refused, else the release (call once). */
  take(address: string): (() => void) | null {
    const n = this.#byAddress.get(address) ?? 0;
    if (n >= this.limits.perAddress || this.#total >= this.limits.total) return null;
    this.#byAddress.set(address, n + 1);
    this.#total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#byAddress.get(address) ?? 1) - 1;
      if (left > 0) this.#byAddress.set(address, left);
      else this.#byAddress.delete(address);
    };
  }

  /** Why `address` was refused, for the 503's body. */
  refusal(address: string): string {
    return (this.#byAddress.get(address) ?? 0) >= this.limits.perAddress
      ? `Too many requests at once from ${address} (at most ${this.limits.perAddress}): try again later`
      : `Too many requests at once (at most ${this.limits.total}): try again later`;
  }
}

export type ServeHandler = (
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/** `handler` behind the counter: a request over a cap gets 503 at once. Requests `selfCounted`
 * names (a WebSocket route holding a slot per open socket) take their slot themselves. */
export function countedHandler(
  counter: RequestCounter,
  handler: ServeHandler,
  selfCounted?: (req: Request) => boolean,
): ServeHandler {
  return async (req, info) => {
    if (selfCounted?.(req)) return await handler(req, info);
    const address = info.remoteAddr.hostname;
    const release = counter.take(address);
    if (!release) {
      return Response.json({ error: counter.refusal(address) }, {
        status: 503,
        headers: { "retry-after": "1" },
      });
    }
    // The slot is held until the response is wholly sent (streams), or failed.
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
  counter: RequestCounter;
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
  /** Share this counter (e.g. with WebSocket routes that hold a slot per open socket). */
  counter?: RequestCounter;
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
  const counter = o.counter ?? new RequestCounter(defaultLimits(o.limits));
  const counted = countedHandler(counter, o.handler, o.selfCounted);
  const addressOf = o.remoteAddr;
  const handler: ServeHandler = addressOf
    ? (req, info) =>
      counted(req, { remoteAddr: addressOf(info.remoteAddr), completed: info.completed })
    : counted;
  const servers: Deno.HttpServer<Deno.NetAddr>[] = [];
  let stopping = false;
  let restarts = 0;
  let port = o.port;
  let backoff = 100;
  const listen = (): Deno.NetAddr => {
    const server = Deno.serve({ hostname: o.hostname, port, onListen: () => {} }, handler);
    servers.push(server);
    server.finished.catch((err: Error) => {
      if (stopping) return;
      restarts++;
      log("accept.failed", { server: o.name, error: err.message, retryMs: backoff });
      const again = () => {
        if (stopping) return;
        try {
          listen();
          log("accept.again", { server: o.name, port, restarts });
          backoff = 100;
        } catch (e) {
          // Binding needs a descriptor too: wait for some to come free.
          log("accept.failed", { server: o.name, error: (e as Error).message, retryMs: backoff });
          backoff = Math.min(2000, backoff * 2);
          setTimeout(again, backoff);
        }
      };
      setTimeout(again, backoff);
      backoff = Math.min(2000, backoff * 2);
    });
    return server.addr;
  };
  const addr = listen();
  port = addr.port;
  return {
    addr,
    counter,
    restarts: () => restarts,
    async shutdown() {
      stopping = true;
      await Promise.all(servers.map((s) => s.shutdown().catch(() => {})));
    },
  };
}
