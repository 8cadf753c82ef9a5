// A raw WebSocket client for the hostile-LAN suite: any source address on loopback (127.0.0.x
// stands in for another host of the LAN), and frames sent exactly as given, so a test can act
// as a student's script would. Written here because a WebSocket from `new WebSocket` can
// neither pick its source address nor send a malformed or oversized frame.
import net from "node:net";
import { randomBytes } from "node:crypto";

export interface RawSession {
  /** Messages the master sent, parsed as JSON. */
  received: Record<string, unknown>[];
  closed: Promise<void>;
  isClosed(): boolean;
  send(msg: unknown): void;
  /** One frame with this opcode and payload, masked as a client must. */
  frame(opcode: number, payload: Uint8Array, fin?: boolean): void;
  /** Wait until a message matches, or throw after `ms`. */
  next(
    pred: (m: Record<string, unknown>) => boolean,
    ms?: number,
  ): Promise<Record<string, unknown>>;
  close(): void;
}

/** Open a control session to `masterUrl` from `localAddress` (e.g. "127.0.0.7"). */
export function rawSession(masterUrl: string, localAddress = "127.0.0.1"): Promise<RawSession> {
  const u = new URL(masterUrl);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port), localAddress });
    let buf = new Uint8Array(0);
    let upgraded = false;
    let isClosed = false;
    const received: Record<string, unknown>[] = [];
    const waiters = new Set<() => void>();
    const { promise: closed, resolve: onClosed } = Promise.withResolvers<void>();
    const s: RawSession = {
      received,
      closed,
      isClosed: () => isClosed,
      send: (msg) => s.frame(1, new TextEncoder().encode(JSON.stringify(msg))),
      frame(opcode, payload, fin = true) {
        const mask = randomBytes(4);
        const n = payload.length;
        const head = n < 126 ? [n | 0x80] : n < 65536 ? [126 | 0x80, n >> 8, n & 255] : [
          127 | 0x80,
          0,
          0,
          0,
          0,
          (n / 2 ** 24) & 255,
          (n >> 16) & 255,
          (n >> 8) & 255,
          n & 255,
        ];
        const out = new Uint8Array(1 + head.length + 4 + n);
        out[0] = (fin ? 0x80 : 0) | opcode;
        out.set(head, 1);
        out.set(mask, 1 + head.length);
        for (let i = 0; i < n; i++) out[1 + head.length + 4 + i] = payload[i] ^ mask[i & 3];
        if (!isClosed) sock.write(out);
      },
      async next(pred, ms = 10_000) {
        const deadline = Date.now() + ms;
        for (;;) {
          const m = received.find(pred);
          if (m) return m;
          if (Date.now() > deadline || isClosed) {
            throw new Error(`No such message from the master; got ${JSON.stringify(received)}`);
          }
          await new Promise<void>((r) => {
            waiters.add(r);
            setTimeout(r, 50);
          });
        }
      },
      close: () => sock.destroy(),
    };
    const wake = () => {
      for (const w of waiters) w();
      waiters.clear();
    };
    sock.on("connect", () => {
      sock.write(
        `GET /api/v1/control HTTP/1.1\r\nhost: ${u.host}\r\nupgrade: websocket\r\n` +
          `connection: Upgrade\r\nsec-websocket-key: ${randomBytes(16).toString("base64")}\r\n` +
          "sec-websocket-version: 13\r\n\r\n",
      );
    });
    sock.on("data", (d: Uint8Array) => {
      const joined = new Uint8Array(buf.length + d.length);
      joined.set(buf);
      joined.set(d, buf.length);
      buf = joined;
      if (!upgraded) {
        const text = new TextDecoder().decode(buf);
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!text.startsWith("HTTP/1.1 101")) {
          reject(new Error(`Upgrade refused: ${text.split("\r\n")[0]}`));
          sock.destroy();
          return;
        }
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve(s);
      }
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 127;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = (buf[2] << 8) | buf[3];
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(new DataView(buf.buffer, buf.byteOffset + 2, 8).getBigUint64(0));
          off = 10;
        }
        if (buf.length < off + len) return;
        const opcode = buf[0] & 15;
        const payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (opcode === 1) {
          try {
            received.push(JSON.parse(new TextDecoder().decode(payload)));
          } catch { /* not ours to judge */ }
          wake();
        } else if (opcode === 8) {
          sock.destroy();
        }
      }
    });
    sock.on("error", (err: Error) => {
      if (!upgraded) reject(err);
    });
    sock.on("close", () => {
      isClosed = true;
      wake();
      onClosed();
    });
  });
}

/** A client hello as the real client sends it. */
export function clientHello(name: string, imageId: string, extra: Record<string, unknown> = {}) {
  return {
    type: "hello",
    version: 1,
    role: "client",
    name,
    imageId,
    port: 9,
    capacity: 3,
    held: 0,
    complete: false,
    ...extra,
  };
}
