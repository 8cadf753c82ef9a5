// One control session's WebSocket, served by the master itself on the TCP connection the front
// door (front_door.ts) hands it after the 101: frames read by protocol/ws_frames.ts, pings
// answered, the close handshake, an idle timeout, and a bound on what waits to be written.
//
// Why our own and not Deno.upgradeWebSocket: Deno's WebSocket server has no payload limit to
// set; it reads a frame whole (up to its own 64 MiB) before our code sees it, and a fragmented
// message without any bound (measured: 128 MiB in 8 KiB fragments took the master from 101 to
// 233 MiB and was never refused). Here a frame whose header passes the limit is refused (1009)
// before a byte of its payload is read.
import type { Logger } from "../../imagetools/kit/mod.ts";
import {
  CLOSE_NO_STATUS,
  closePayload,
  encodeFrame,
  type FrameEvent,
  FrameReader,
  OP_CLOSE,
  OP_PING,
  OP_PONG,
  OP_TEXT,
} from "../protocol/mod.ts";

/** What a control session's socket offers the core (a WebSocket's shape, the part we use). */
export interface ControlChannel {
  /** 0 connecting, 1 open, 2 closing, 3 closed (as WebSocket.readyState). */
  readonly readyState: number;
  onopen: (() => void) | null;
  onmessage: ((ev: { data: string | ArrayBuffer }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: (() => void) | null;
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

export interface ControlSocketOptions {
  /** The most payload bytes one message may have. */
  maxMessage: number;
  /** Silence after which it pings (half), then closes with 1001 (all), as Deno's idleTimeout. */
  idleMs?: number;
  /** Bytes queued to a client that does not read, after which the connection is dropped. */
  maxQueued?: number;
  log?: Logger;
  address?: string;
}

const CONNECTING = 0, OPEN = 1, CLOSING = 2, CLOSED = 3;
/** After a refusal: how long the master, reading nothing more, leaves the client to read its
 * close frame before it drops the connection (a close with bytes unread resets it at once,
 * and the client could lose the close frame). */
const LINGER_MS = 1000;
/** A close the master started: how long it waits for the client's close frame. */
const CLOSE_WAIT_MS = 2000;

export class ControlSocket implements ControlChannel {
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string | ArrayBuffer }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  readonly #conn: Deno.Conn;
  readonly #reader: FrameReader;
  readonly #o: ControlSocketOptions;
  #leftover: Uint8Array;
  readonly #leftoverLength: number;
  #state = CONNECTING;
  #writing = Promise.resolve();
  #queued = 0;
  #lastSeen = performance.now();
  /** When the idle check pinged, until a frame comes after it. */
  #pingedAt: number | null = null;
  #idle: ReturnType<typeof setInterval> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #refused = false;
  #bytesRead = 0;
  readonly #ended = Promise.withResolvers<{ code: number; reason: string }>();

  /** `leftover`: what the client sent after its request head (frames already). */
  constructor(conn: Deno.Conn, leftover: Uint8Array, o: ControlSocketOptions) {
    this.#conn = conn;
    this.#leftover = leftover;
    this.#leftoverLength = leftover.length;
    this.#reader = new FrameReader(o.maxMessage);
    this.#o = o;
  }

  get readyState(): number {
    return this.#state;
  }

  /** Settles once the connection is closed, with the close's code and reason. */
  get closed(): Promise<{ code: number; reason: string }> {
    return this.#ended.promise;
  }

  /** Open (the 101 is sent): onopen, then read the client's frames until the end. */
  start() {
    this.#state = OPEN;
    const idleMs = this.#o.idleMs ?? 60_000;
    this.#idle = setInterval(() => this.#checkIdle(idleMs / 2), idleMs / 2);
    this.onopen?.();
    this.#read().catch(() => this.#end(1006, "read failed"));
  }

  send(text: string) {
    if (this.#state !== OPEN) return;
    this.#write(encodeFrame(OP_TEXT, new TextEncoder().encode(text)));
  }

  close(code = 1000, reason = "") {
    if (this.#state !== OPEN) return;
    this.#state = CLOSING;
    this.#write(encodeFrame(OP_CLOSE, closePayload(code, reason)));
    this.#timer = setTimeout(() => this.#end(code, reason), CLOSE_WAIT_MS);
  }

  /** Drop the connection now (the master is shutting down). */
  destroy() {
    this.#end(1001, "the master is shutting down");
  }

  async #read() {
    const buf = new Uint8Array(4096);
    let bytes = this.#leftover;
    this.#leftover = new Uint8Array(0);
    for (;;) {
      if (this.#state === CLOSED) return;
      if (bytes.length > 0) { for (const e of this.#reader.push(bytes)) this.#event(e); }
      // Refused: nothing more is read (TCP holds the client back); the linger ends it.
      if (this.#refused) return;
      const n = await this.#conn.read(buf).catch(() => null);
      if (n === null) break;
      this.#bytesRead += n;
      bytes = buf.subarray(0, n);
    }
    this.#end(1006, "connection lost");
  }

  #event(e: FrameEvent) {
    this.#lastSeen = performance.now();
    switch (e.type) {
      case "message":
        if (this.#state !== OPEN) return; // closing: what still comes is not read
        this.onmessage?.({
          data: typeof e.data === "string" ? e.data : e.data.slice().buffer,
        });
        return;
      case "ping":
        if (this.#state === OPEN) this.#write(encodeFrame(OP_PONG, e.data));
        return;
      case "pong":
        return;
      case "close":
        if (this.#state === OPEN) {
          // Their close first: answer with the same code, then hang up.
          this.#state = CLOSING;
          const payload = e.code === CLOSE_NO_STATUS ? new Uint8Array(0) : closePayload(e.code, "");
          this.#write(encodeFrame(OP_CLOSE, payload));
        }
        this.#writing.finally(() => this.#end(e.code, e.reason));
        return;
      case "fail":
        // `read`: every byte the master took from this connection (frames, not the head).
        this.#o.log?.("control.refused", {
          address: this.#o.address,
          code: e.code,
          reason: e.reason,
          read: this.#bytesRead + this.#leftoverLength,
        });
        this.#fail(e.code, e.reason);
    }
  }

  /** Refuse: the close frame, then read nothing more and hang up soon. */
  #fail(code: number, reason: string) {
    if (this.#state === OPEN) this.#write(encodeFrame(OP_CLOSE, closePayload(code, reason)));
    this.#state = CLOSING;
    this.#refused = true;
    this.#writing.finally(() => shutWrite(this.#conn));
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#end(code, reason), LINGER_MS);
  }

  #checkIdle(half: number) {
    if (this.#state !== OPEN) return;
    const now = performance.now();
    const verdict = idleVerdict(now, this.#lastSeen, this.#pingedAt, half);
    if (verdict === "ok") this.#pingedAt = null;
    else if (verdict === "ping") {
      this.#pingedAt = now;
      this.#write(encodeFrame(OP_PING, new Uint8Array(0)));
    } else this.close(1001, "No response from ping frame.");
  }

  #write(bytes: Uint8Array) {
    this.#queued += bytes.length;
    if (this.#queued > (this.#o.maxQueued ?? 1 << 20)) {
      // A client that does not read its messages: nothing more is kept for it.
      this.#end(1006, "the client does not read");
      return;
    }
    this.#writing = this.#writing.then(async () => {
      if (this.#state === CLOSED) return;
      let off = 0;
      while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
      this.#queued -= bytes.length;
    }).catch(() => this.#end(1006, "write failed"));
  }

  #end(code: number, reason: string) {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    clearInterval(this.#idle);
    clearTimeout(this.#timer);
    try {
      this.#conn.close();
    } catch { /* closed already */ }
    this.#ended.resolve({ code, reason });
    try {
      this.onclose?.({ code, reason });
    } finally {
      this.onmessage = null;
    }
  }
}

/** The idle check, every `half` ms: a peer heard within `half` (or since the ping) is alive; a
 * silent one is pinged; one pinged and silent since is closed. The ping is what the answer is
 * timed from: timed from the last frame, a pong a few ms after the ping was `half` old at the next
 * check whenever that check ran a few ms late, and an idle peer that answered every ping (a fake
 * server, a finished PC) was closed every third check (bench:dashboard: the fake server, 90 s in). */
export function idleVerdict(
  now: number,
  lastSeen: number,
  pingedAt: number | null,
  half: number,
): "ok" | "ping" | "close" {
  if (pingedAt !== null) return lastSeen >= pingedAt ? "ok" : "close";
  return now - lastSeen < half ? "ok" : "ping";
}

/** Half-close: no more bytes from us (the peer may still send). Never throws. */
export function shutWrite(conn: Deno.Conn) {
  try {
    conn.closeWrite().catch(() => {});
  } catch { /* closed already */ }
}
