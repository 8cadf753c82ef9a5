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
import type { Logger } from "../../imagetools/kit/mod.ts";
import {
  guardedServe,
  type GuardedServer,
  type RequestCounter,
  type ServeLimits,
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
  counter: RequestCounter;
  limits?: Partial<ServeLimits>;
  /** The control route: its path, and what to do with each session once it is open. */
  control: { path: string; open(socket: ControlSocket, address: string): void };
  log: Logger;
  /** Names this server in its log lines. */
  name: string;
}

/** A client has this long to send its whole request head on the control path. */
const HEAD_MS = 10_000;
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
    counter: o.counter,
    remoteAddr: (seen) => origins.get(seen.port) ?? seen,
    log,
    name: `${o.name}-http`,
  });
  const listener = Deno.listen({ hostname: o.hostname, port: o.port });
  const line = new TextEncoder().encode(`GET ${o.control.path}`);
  let stopping = false;
  let restarts = 0;

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

  const controlSession = async (conn: Deno.TcpConn, bytes: Uint8Array, end: number) => {
    const head = parseHead(bytes.subarray(0, end));
    if (!head) return await answerAndClose(conn, refusal(400, "Malformed request head"));
    if (!wantsWebSocket(head)) return await relay(conn, bytes); // the app answers 426
    const address = (conn.remoteAddr as Deno.NetAddr).hostname;
    // The session holds a slot of its address until it closes.
    const release = o.counter.take(address);
    if (!release) {
      const no = refusal(503, o.counter.refusal(address), { "retry-after": "1" });
      return await answerAndClose(conn, no);
    }
    const answer = upgradeAnswer(head);
    if (!answer.ok) {
      release();
      return await answerAndClose(conn, answer.bytes);
    }
    try {
      await writeAll(conn, answer.bytes);
    } catch {
      release();
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
    socket.closed.then(() => {
      release();
      open.delete(drop);
    });
    o.control.open(socket, address);
    socket.start();
  };

  const handle = async (conn: Deno.TcpConn) => {
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
          return await controlSession(conn, bytes, end);
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
    let failing = false;
    let backoff = 100;
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (stopping) return;
        // No descriptor left (EMFILE): the listener stays; accept again once some are free.
        restarts++;
        failing = true;
        log("accept.failed", { server: o.name, error: (err as Error).message, retryMs: backoff });
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(2000, backoff * 2);
        continue;
      }
      if (failing) {
        failing = false;
        backoff = 100;
        log("accept.again", { server: o.name, port: listener.addr.port, restarts });
      }
      handle(conn).catch(() => {
        try {
          conn.close();
        } catch { /* closed already */ }
      });
    }
  })();

  return {
    addr: listener.addr as Deno.NetAddr,
    counter: o.counter,
    restarts: () => restarts + inner.restarts(),
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
