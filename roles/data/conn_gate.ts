// A port of our own in front of Deno.serve, for a LAN of strangers. Every TCP connection is
// counted from its accept, in the descriptors it may hold here (slots.ts: per address and in
// all), must send its whole first request head within headMs, and is closed once silent both
// ways for idleMs; between those it is relayed byte for byte to Deno.serve on loopback
// (serve_guard.ts), which is told the client's own address. `takeOver` serves a connection
// itself instead (the master's control WebSocket, front_door.ts; a chunk server's data path,
// direct_http.ts), `track`ed by the same idle sweep and shutdown.
//
// Why our own: Deno.serve has no hook for connections, and no header or idle timeout of its own
// (measured, Deno 2.9: an idle socket, a half-sent head and a kept-alive one all stayed open
// past 75 s), so a student's idle sockets held a chunk server's descriptors until it had none
// left. node:http has the timeouts, but answered small requests at about a quarter of
// Deno.serve's rate (front_door.ts). The relay costs a chunk server about 0.4 CPU s a GiB
// (loopback, 1 GiB/s direct vs 0.75 GiB/s relayed): little for requests, but a third of a
// relay's CPU budget for its bulk bytes, so a chunk server answers those itself on the
// accepted connection (direct_http.ts).
import type { Logger } from "../../imagetools/kit/mod.ts";
import { headEnd, MAX_HEAD_BYTES, refusal } from "../protocol/mod.ts";
import { AcceptBackoff } from "./accept_backoff.ts";
import { guardedServe, type GuardedServer, type ServeHandler } from "./serve_guard.ts";
import type { ServeLimits, Slot, SlotCounter } from "./slots.ts";

/** A relayed connection's descriptors: the client's socket, the relay's loopback socket,
 * Deno.serve's end of it, and a file its request may read (HTTP/1.1 serves one at a time). */
export const RELAY_SLOTS = 4;
/** A connection has this long to send its whole first request head. */
export const HEAD_MS = 10_000;
/** A connection silent both ways this long is closed: longer than a relay's wait for a chunk
 * (30 s) and than fetch's pool keeps an idle connection (90 s), so an honest client always
 * closes an idle one first (a dashboard's stream gets a frame every second). */
export const IDLE_MS = 120_000;
/** Refusals are logged at most this often (a flood would fill the log). */
const REFUSAL_LOG_MS = 5000;
const RELAY_BUFFER = 64 * 1024;

export interface GateOptions {
  hostname: string;
  port: number;
  /** What Deno.serve answers (every connection `takeOver` does not serve). */
  handler: ServeHandler;
  /** Slots per address and in all, in descriptors (RELAY_SLOTS a connection). */
  counter: SlotCounter;
  /** The inner server's own request counter (serve_guard.ts): limits for a default one, or
   * null for none. */
  requests?: Partial<ServeLimits> | null;
  /** Serves a connection itself, given its first head (`end`: where it ends) and its slot;
   * `relay` hands it to the HTTP server after all (with the bytes read so far from a request
   * head on: the first head's by default). Returns null when it does not want it. */
  takeOver?: (
    conn: Deno.TcpConn,
    bytes: Uint8Array,
    end: number,
    slot: Slot,
    relay: (bytes?: Uint8Array) => Promise<void>,
  ) => Promise<void> | null;
  headMs?: number;
  idleMs?: number;
  log: Logger;
  /** Names this server in its log lines. */
  name?: string;
}

export interface Gate extends GuardedServer {
  /** Register something shutdown must end (a taken-over connection). */
  hold(close: () => void): () => void;
  /** A taken-over connection the gate closes once idle for idleMs, as it does relayed ones. */
  track(conn: Deno.Conn): Tracked;
}

/** A taken-over connection, as the gate sees it. */
export interface Tracked {
  /** Bytes went either way just now. */
  touch(): void;
  /** Between requests (true): shutdown closes it at once; else it waits (a second at most)
   * for the response in flight to end. */
  between(on: boolean): void;
  /** The gate is shutting down: answer no further request. */
  readonly stopping: boolean;
  /** Served to its end (or relayed after all): no longer tracked. */
  end(): void;
}

/** A relayed or tracked connection: when bytes last went either way, its close, its end. */
interface Relayed {
  last: number;
  close: () => void;
  done?: Promise<void>;
  /** A tracked connection waiting for its next request. */
  between?: boolean;
}

export function gatedServe(o: GateOptions): Gate {
  const log = o.log;
  const headMs = o.headMs ?? HEAD_MS;
  const idleMs = o.idleMs ?? IDLE_MS;
  // Connections relayed to the HTTP server: the relay's port there -> the client's address.
  const origins = new Map<number, Deno.NetAddr>();
  // Every relayed connection, with when bytes last went either way.
  const relays = new Set<Relayed>();
  // Connections still sending their first head.
  const arriving = new Set<Deno.Conn>();
  const held = new Set<() => void>();
  const inner = innerServe(() =>
    guardedServe({
      hostname: "127.0.0.1",
      port: 0,
      handler: o.handler,
      ...(o.requests === null ? { counter: null } : { limits: o.requests ?? {} }),
      remoteAddr: (seen) => origins.get(seen.port) ?? seen,
      log,
      name: `${o.name}-http`,
    })
  );
  const listener = Deno.listen({ hostname: o.hostname, port: o.port });
  const backoff = new AcceptBackoff(o.name, log);
  let stopping = false;
  let refusalLogged = -Infinity;
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const r of relays) if (now - r.last > idleMs) r.close();
  }, Math.max(50, Math.min(5000, idleMs / 4)));
  Deno.unrefTimer(sweep);

  /** Close at once: no answer, no read (a stranger's flood costs nothing more). */
  const refuse = (conn: Deno.Conn, address: string) => {
    closeQuietly(conn);
    const now = performance.now();
    if (now - refusalLogged < REFUSAL_LOG_MS) return;
    refusalLogged = now;
    log("connections.refused", {
      server: o.name,
      address,
      refusedAddress: o.counter.refused.address,
      refusedTotal: o.counter.refused.total,
      held: o.counter.total,
      cap: o.counter.limits.total,
    });
  };

  const relay = async (conn: Deno.TcpConn, first: Uint8Array) => {
    let up: Deno.TcpConn;
    try {
      up = await Deno.connect({ hostname: "127.0.0.1", port: inner.addr.port });
    } catch {
      closeQuietly(conn); // no descriptor left: the client tries again
      return;
    }
    const port = (up.localAddr as Deno.NetAddr).port;
    origins.set(port, conn.remoteAddr as Deno.NetAddr);
    const entry: Relayed = {
      last: performance.now(),
      close: () => [conn, up].forEach(closeQuietly),
    };
    relays.add(entry);
    try {
      up.setNoDelay(true);
      conn.setNoDelay(true);
    } catch { /* not TCP */ }
    // The client's half ending is passed on; the server's ends the whole connection.
    pump(conn, up, entry, first).then(() => shutWrite(up));
    entry.done = pump(up, conn, entry);
    await entry.done;
    origins.delete(port);
    relays.delete(entry);
    entry.close();
  };

  /** Serve one connection to its end (its slot is released then). */
  const handle = async (conn: Deno.TcpConn, slot: Slot) => {
    const timer = setTimeout(() => closeQuietly(conn), headMs);
    arriving.add(conn);
    let head: Awaited<ReturnType<typeof readHead>>;
    try {
      head = await readHead(conn, new Uint8Array(0));
    } finally {
      clearTimeout(timer);
      arriving.delete(conn);
    }
    if (!head) return closeQuietly(conn);
    if (head === "too big") return await answerAndClose(conn, headTooBig());
    if (stopping) return closeQuietly(conn);
    const { bytes, end } = head;
    const own = o.takeOver?.(conn, bytes, end, slot, (b = bytes) => relay(conn, b));
    await (own ?? relay(conn, bytes));
  };

  (async () => {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (stopping) return;
        // No descriptor left (EMFILE): the listener stays; accept again once some are free.
        await backoff.failed(err);
        continue;
      }
      backoff.ok(listener.addr.port);
      const address = (conn.remoteAddr as Deno.NetAddr).hostname;
      // What a relayed connection will hold, from the start: one over a cap costs nothing more.
      const slot = o.counter.take(address, RELAY_SLOTS);
      if (!slot) {
        refuse(conn, address);
        continue;
      }
      handle(conn, slot).catch(() => closeQuietly(conn)).finally(slot.release);
    }
  })();

  return {
    addr: listener.addr as Deno.NetAddr,
    restarts: () => backoff.restarts + inner.restarts(),
    hold(close) {
      held.add(close);
      return () => held.delete(close);
    },
    track(conn) {
      const entry: Relayed = { last: performance.now(), close: () => closeQuietly(conn) };
      const ended = Promise.withResolvers<void>();
      entry.done = ended.promise;
      relays.add(entry);
      return {
        touch: () => void (entry.last = performance.now()),
        between(on) {
          entry.between = on;
          if (on && stopping) entry.close();
        },
        get stopping() {
          return stopping;
        },
        end() {
          relays.delete(entry);
          ended.resolve();
        },
      };
    },
    async shutdown() {
      stopping = true;
      clearInterval(sweep);
      listener.close();
      for (const conn of arriving) closeQuietly(conn);
      for (const r of relays) if (r.between) r.close();
      // Graceful: the HTTP server finishes what it answers and closes its end, which ends each
      // relay once it has passed every byte on (a second at most for a client that reads
      // nothing more).
      await inner.shutdown();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all([...relays].map((r) => r.done)),
        new Promise((r) => (timer = setTimeout(r, 1000))),
      ]);
      clearTimeout(timer);
      for (const r of relays) r.close();
      for (const close of held) close();
    },
  };
}

/** Copy `src` into `dst` (after `first`) until `src` ends or either fails; each read counts as
 * traffic for the idle timer. */
async function pump(src: Deno.Conn, dst: Deno.Conn, seen: { last: number }, first?: Uint8Array) {
  const buf = new Uint8Array(RELAY_BUFFER);
  try {
    if (first?.length) await writeAll(dst, first);
    for (;;) {
      const n = await src.read(buf);
      if (n === null) return;
      seen.last = performance.now();
      await writeAll(dst, buf.subarray(0, n));
    }
  } catch { /* either side gone */ }
}

export async function writeAll(conn: Deno.Conn, bytes: Uint8Array) {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** Half-close: no more bytes from us. */
export function shutWrite(conn: Deno.Conn) {
  try {
    conn.closeWrite().catch(() => {});
  } catch { /* closed already */ }
}

export function closeQuietly(conn: Deno.Conn) {
  try {
    conn.close();
  } catch { /* closed already */ }
}

/** Answer, then hang up once the client has (or after a second): a close with bytes unread
 * would reset the connection, and the client could lose the answer. */
export async function answerAndClose(conn: Deno.Conn, bytes: Uint8Array) {
  const timer = setTimeout(() => closeQuietly(conn), 1000);
  try {
    await writeAll(conn, bytes);
    shutWrite(conn);
    const buf = new Uint8Array(4096);
    for (let n = 0; n < 65536;) {
      const got = await conn.read(buf);
      if (got === null) break;
      n += got;
    }
  } catch { /* gone */ }
  clearTimeout(timer);
  closeQuietly(conn);
}

/** Read from `conn` until `have` (and what comes) holds a whole request head: its bytes (and any
 * after it) and where the head ends; null when the connection ends first; "too big" once past
 * MAX_HEAD_BYTES. `onRead` is told of every read. */
export async function readHead(
  conn: Deno.Conn,
  have: Uint8Array,
  onRead?: () => void,
): Promise<{ bytes: Uint8Array; end: number } | null | "too big"> {
  let bytes = have;
  let end = headEnd(bytes);
  const buf = end < 0 ? new Uint8Array(4096) : bytes;
  while (end < 0) {
    if (bytes.length > MAX_HEAD_BYTES) return "too big";
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return null;
    onRead?.();
    bytes = concat(bytes, buf.subarray(0, n));
    end = headEnd(bytes);
  }
  return { bytes, end };
}

/** The answer to a head over MAX_HEAD_BYTES. */
export const headTooBig = () => refusal(431, `Request head over ${MAX_HEAD_BYTES} bytes`);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The gate's HTTP server on 127.0.0.1, with an error that says what is wrong where the
 * loopback interface is down (an initramfs that never brought `lo` up). */
function innerServe<T>(start: () => T): T {
  try {
    return start();
  } catch (e) {
    if (e instanceof Deno.errors.AddrNotAvailable) {
      throw new Error(
        `the chunk server's gate cannot listen on 127.0.0.1 (${(e as Error).message}): ` +
          "bring the loopback interface up (ip link set lo up)",
      );
    }
    throw e;
  }
}
