// The master's one port. Every TCP connection comes in here first: one whose first request is
// the control WebSocket's upgrade is answered here and served by control_ws.ts on that same
// connection; every other is relayed byte for byte to the master's HTTP server (Deno.serve
// behind serve_guard.ts, listening on loopback), which is told the client's own address.
//
// Why our own door: Deno's WebSocket cannot refuse a frame by its header (control_ws.ts says
// why), and Deno.serve gives no other way to take a connection over. node:http can (its
// "upgrade" event), but in Deno 2.9 it answered small requests at about a quarter of
// Deno.serve's rate, so only the control upgrade leaves Deno.serve (BENCHMARKS.md, "The
// master's port").
//
// Every connection holds slots of its address (data/slots.ts) from its accept to its end, one
// per descriptor it may hold in this process (RELAY_SLOTS from the accept, CONTROL_SLOTS once
// it is a session): a stranger's idle connections are closed at once, unread, before the
// process runs out of descriptors, where counting connections (a relayed one holds 3 or 4
// descriptors) or requests (an idle connection holds none) would let it run out.
import type { Logger } from "../../imagetools/kit/mod.ts";
import {
  AcceptBackoff,
  guardedServe,
  type GuardedServer,
  type Slot,
  type SlotCounter,
} from "../data/mod.ts";
import {
  headEnd,
  MAX_HEAD_BYTES,
  MAX_MESSAGE_BYTES,
  parseHead,
  refusal,
  upgradeAnswer,
  wantsWebSocket,
} from "../protocol/mod.ts";
import { ControlSocket, shutWrite } from "./control_ws.ts";

type ServeHandler = Parameters<typeof guardedServe>[0]["handler"];

export interface FrontDoorOptions {
  hostname: string;
  port: number;
  /** Every request but the control upgrade (the HTTP app). */
  handler: ServeHandler;
  /** Slots per address and in all, in descriptors (CONTROL_SLOTS, RELAY_SLOTS). */
  counter: SlotCounter;
  /** The control route: its path, and what to do with each session once it is open. */
  control: { path: string; open(socket: ControlSocket, address: string): void };
  log: Logger;
  /** Names this server in its log lines. */
  name: string;
}

/** A control session's descriptor: its socket. */
export const CONTROL_SLOTS = 1;
/** A relayed connection's: the client's socket, the relay's loopback socket, Deno.serve's end
 * of it, and a file its request may read (a boot file; HTTP/1.1 serves one at a time). */
export const RELAY_SLOTS = 4;

/** A client has this long to send its whole request head on the control path. */
const HEAD_MS = 10_000;
/** Refusals are logged at most this often (a flood would fill the log). */
const REFUSAL_LOG_MS = 5000;
const RELAY_BUFFER = 32 * 1024;

export function frontDoor(o: FrontDoorOptions): GuardedServer {
  const log = o.log;
  // Connections relayed to the HTTP server: the relay's port there -> the client's address.
  const origins = new Map<number, Deno.NetAddr>();
  // What shutdown ends: every relayed connection and control session still open.
  const open = new Set<() => void>();
  const inner = guardedServe({
    hostname: "127.0.0.1",
    port: 0,
    handler: o.handler,
    counter: null, // the door counts each connection's descriptors itself
    remoteAddr: (seen) => origins.get(seen.port) ?? seen,
    log,
    name: `${o.name}-http`,
  });
  const listener = Deno.listen({ hostname: o.hostname, port: o.port });
  const line = new TextEncoder().encode(`GET ${o.control.path}`);
  const backoff = new AcceptBackoff(o.name, log);
  let stopping = false;
  let refusalLogged = -Infinity;

  /** Close at once: no answer, no read (a stranger's flood costs nothing more). */
  const refuse = (conn: Deno.Conn, address: string) => {
    try {
      conn.close();
    } catch { /* closed already */ }
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

  /** Is this the control route's request line? true, false, or null: too few bytes yet. */
  const isControl = (b: Uint8Array): boolean | null => {
    for (let i = 0; i < Math.min(b.length, line.length); i++) if (b[i] !== line[i]) return false;
    if (b.length <= line.length) return null;
    return b[line.length] === 0x20 || b[line.length] === 0x3f; // " " or "?"
  };

  const relay = async (conn: Deno.TcpConn, first: Uint8Array) => {
    let up: Deno.TcpConn;
    try {
      up = await Deno.connect({ hostname: "127.0.0.1", port: inner.addr.port });
    } catch {
      conn.close(); // no descriptor left: the client tries again
      return;
    }
    const port = (up.localAddr as Deno.NetAddr).port;
    origins.set(port, conn.remoteAddr as Deno.NetAddr);
    const both = () => {
      for (const c of [conn, up]) {
        try {
          c.close();
        } catch { /* closed already */ }
      }
    };
    open.add(both);
    try {
      up.setNoDelay(true);
      conn.setNoDelay(true);
    } catch { /* not TCP */ }
    // The client's half ending is passed on; the server's ends the whole connection.
    pump(conn, up, first).then(() => shutWrite(up));
    await pump(up, conn);
    origins.delete(port);
    open.delete(both);
    both();
  };

  const controlSession = async (
    conn: Deno.TcpConn,
    bytes: Uint8Array,
    end: number,
    slot: Slot,
  ) => {
    const head = parseHead(bytes.subarray(0, end));
    if (!head) return await answerAndClose(conn, refusal(400, "Malformed request head"));
    if (!wantsWebSocket(head)) return await relay(conn, bytes); // the app answers 426
    const address = (conn.remoteAddr as Deno.NetAddr).hostname;
    const answer = upgradeAnswer(head);
    if (!answer.ok) return await answerAndClose(conn, answer.bytes);
    slot.shrink(RELAY_SLOTS - CONTROL_SLOTS); // a session holds its socket alone
    try {
      await writeAll(conn, answer.bytes);
    } catch {
      conn.close();
      return;
    }
    const socket = new ControlSocket(conn, bytes.slice(end), {
      maxMessage: MAX_MESSAGE_BYTES,
      log,
      address,
    });
    const drop = () => socket.destroy();
    open.add(drop);
    try {
      o.control.open(socket, address);
      socket.start();
    } catch (err) {
      socket.destroy();
      log("control.failed", { address, error: (err as Error).message });
    }
    // The session holds its slot until it closes.
    await socket.closed;
    open.delete(drop);
  };

  /** Serve one connection to its end (its slot is released then). */
  const handle = async (conn: Deno.TcpConn, slot: Slot) => {
    const buf = new Uint8Array(4096);
    let bytes: Uint8Array = new Uint8Array(0);
    let control: boolean | null = null;
    // A connection has HEAD_MS to show its request line, and one on the control path to send
    // its whole head; after that line every other is the HTTP server's.
    const timer = setTimeout(() => {
      if (control !== false) conn.close();
    }, HEAD_MS);
    try {
      for (;;) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) {
          conn.close();
          return;
        }
        bytes = concat(bytes, buf.subarray(0, n));
        control = isControl(bytes);
        if (control === false) break;
        if (control === null) continue;
        const end = headEnd(bytes);
        if (end >= 0) {
          clearTimeout(timer);
          return await controlSession(conn, bytes, end, slot);
        }
        if (bytes.length > MAX_HEAD_BYTES) {
          return await answerAndClose(
            conn,
            refusal(431, `Request head over ${MAX_HEAD_BYTES} bytes`),
          );
        }
      }
    } finally {
      clearTimeout(timer);
    }
    await relay(conn, bytes);
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
      handle(conn, slot).catch(() => {
        try {
          conn.close();
        } catch { /* closed already */ }
      }).finally(slot.release);
    }
  })();

  return {
    addr: listener.addr as Deno.NetAddr,
    restarts: () => backoff.restarts + inner.restarts(),
    async shutdown() {
      stopping = true;
      listener.close();
      await inner.shutdown();
      for (const close of open) close();
    },
  };
}

/** Copy `src` into `dst` (after `first`) until `src` ends or either fails. */
async function pump(src: Deno.Conn, dst: Deno.Conn, first?: Uint8Array) {
  const buf = new Uint8Array(RELAY_BUFFER);
  try {
    if (first?.length) await writeAll(dst, first);
    for (;;) {
      const n = await src.read(buf);
      if (n === null) return;
      await writeAll(dst, buf.subarray(0, n));
    }
  } catch { /* either side gone */ }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array) {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** Answer, then hang up once the client has (or after a second): a close with bytes unread
 * would reset the connection, and the client could lose the answer. */
async function answerAndClose(conn: Deno.Conn, bytes: Uint8Array) {
  const timer = setTimeout(() => conn.close(), 1000);
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
  try {
    conn.close();
  } catch { /* closed already */ }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
