// The master's one port. Every TCP connection comes in through the gate (data/conn_gate.ts:
// counted in descriptors per address and in all, its first head within a deadline, closed when
// idle); one whose first request is the control WebSocket's upgrade is answered here and
// served by control_ws.ts on that same connection; every other is relayed byte for byte to the
// master's HTTP server (Deno.serve behind serve_guard.ts, listening on loopback), which is told
// the client's own address.
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
  answerAndClose,
  gatedServe,
  type GuardedServer,
  RELAY_SLOTS,
  type ServeHandler,
  type Slot,
  type SlotCounter,
  writeAll,
} from "../data/mod.ts";
import {
  MAX_MESSAGE_BYTES,
  parseHead,
  refusal,
  upgradeAnswer,
  wantsWebSocket,
} from "../protocol/mod.ts";
import { ControlSocket } from "./control_ws.ts";

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
  /** The gate's deadline for a connection's first head, and its idle time (tests). */
  headMs?: number;
  idleMs?: number;
}

/** A control session's descriptor: its socket. */
export const CONTROL_SLOTS = 1;

export function frontDoor(o: FrontDoorOptions): GuardedServer {
  const log = o.log;
  const line = new TextEncoder().encode(`GET ${o.control.path}`);
  /** Is this the control route's request line? */
  const isControl = (b: Uint8Array): boolean => {
    for (let i = 0; i < line.length; i++) if (b[i] !== line[i]) return false;
    return b[line.length] === 0x20 || b[line.length] === 0x3f; // " " or "?"
  };

  const controlSession = async (
    conn: Deno.TcpConn,
    bytes: Uint8Array,
    end: number,
    slot: Slot,
    relay: () => Promise<void>,
  ) => {
    const head = parseHead(bytes.subarray(0, end));
    if (!head) return await answerAndClose(conn, refusal(400, "Malformed request head"));
    if (!wantsWebSocket(head)) return await relay(); // the app answers 426
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
    const done = gate.hold(() => socket.destroy());
    try {
      o.control.open(socket, address);
      socket.start();
    } catch (err) {
      socket.destroy();
      log("control.failed", { address, error: (err as Error).message });
    }
    // The session holds its slot until it closes.
    await socket.closed;
    done();
  };

  const gate = gatedServe({
    hostname: o.hostname,
    port: o.port,
    handler: o.handler,
    counter: o.counter,
    requests: null, // the gate counts each connection's descriptors
    takeOver: (conn, bytes, end, slot, relay) =>
      isControl(bytes) ? controlSession(conn, bytes, end, slot, relay) : null,
    headMs: o.headMs,
    idleMs: o.idleMs,
    log,
    name: o.name,
  });
  return gate;
}
