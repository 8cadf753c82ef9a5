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
    const sock = upgradeSocket(u, localAddress, {
      opened: () => {
        upgraded = true;
        resolve(s);
      },
      refused: reject,
      frames(buf) {
        for (;;) {
          if (buf.length < 2) return buf;
          let len = buf[1] & 127;
          let off = 2;
          if (len === 126) {
            if (buf.length < 4) return buf;
            len = (buf[2] << 8) | buf[3];
            off = 4;
          } else if (len === 127) {
            if (buf.length < 10) return buf;
            len = Number(new DataView(buf.buffer, buf.byteOffset + 2, 8).getBigUint64(0));
            off = 10;
          }
          if (buf.length < off + len) return buf;
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
      },
    });
    sock.on("error", (err: Error) => {
      if (!upgraded) reject(err);
    });
    sock.on("close", () => {
      isClosed = true;
      if (!upgraded) reject(new Error("Upgrade refused: closed unanswered"));
      wake();
      onClosed();
    });
  });
}

/** Connect from `localAddress` and ask for the control WebSocket. After the 101, `frames` gets
 * the bytes the master sent (what it left unread last time, then what came) and returns what it
 * leaves unread; a refusal (any other status) goes to `refused`. */
function upgradeSocket(
  u: URL,
  localAddress: string,
  on: {
    opened(): void;
    refused(err: Error): void;
    frames(buf: Uint8Array): Uint8Array;
  },
): net.Socket {
  const sock = net.connect({ host: u.hostname, port: Number(u.port), localAddress });
  let buf: Uint8Array = new Uint8Array(0);
  let upgraded = false;
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
        on.refused(new Error(`Upgrade refused: ${text.split("\r\n")[0]}`));
        sock.destroy();
        return;
      }
      upgraded = true;
      buf = buf.subarray(end + 4);
      on.opened();
    }
    buf = on.frames(buf);
  });
  return sock;
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

/** What an oversized-frame attack got from the master (floodFrame). */
export interface FloodResult {
  /** Bytes the connection took (the handshake not counted) before the master closed it. */
  written: number;
  /** The close code of the master's close frame, null if it sent none. */
  closeCode: number | null;
  /** Whether the master closed the connection (else the attack sent everything it meant to). */
  closed: boolean;
}

/** A WebSocket frame head, masked (as a client's), announcing `length` payload bytes. */
export function frameHead(opcode: number, length: number, fin = true): Uint8Array {
  const head = length < 126 ? [length] : length < 65536 ? [126, length >> 8, length & 255] : [
    127,
    ...Array.from({ length: 8 }, (_, i) => Math.floor(length / 2 ** (8 * (7 - i))) & 255),
  ];
  return new Uint8Array([(fin ? 0x80 : 0) | opcode, head[0] | 0x80, ...head.slice(1), 1, 2, 3, 4]);
}

/** Open a control session from `localAddress` and send what `attack` yields (frame heads and
 * payload, written as fast as the master takes them) until it ends or the master closes; when
 * it ends first, wait `graceMs` for the master to close. */
export function floodFrame(
  masterUrl: string,
  localAddress: string,
  attack: () => Iterable<Uint8Array>,
  graceMs = 5000,
): Promise<FloodResult> {
  const u = new URL(masterUrl);
  return new Promise((resolve, reject) => {
    let upgraded = false;
    let written = 0;
    let closeCode: number | null = null;
    let closed = false;
    const pump = async () => {
      for (const piece of attack()) {
        if (closed) break;
        const ok = await new Promise<boolean>((r) => sock.write(piece, (err) => r(!err)));
        if (!ok || closed) break;
        written += piece.length;
      }
    };
    const sock = upgradeSocket(u, localAddress, {
      opened() {
        upgraded = true;
        pump().then(() => {
          const timer = setTimeout(() => {
            resolve({ written, closeCode, closed: false });
            sock.destroy();
          }, graceMs);
          sock.on("close", () => clearTimeout(timer));
        });
      },
      refused: reject,
      // The master's frames: only a close frame matters here (its code).
      frames(buf) {
        while (buf.length >= 2) {
          const len = buf[1] & 127;
          if (len >= 126) break; // nothing the master sends here is that long
          if (buf.length < 2 + len) break;
          if ((buf[0] & 15) === 8 && len >= 2) closeCode = (buf[2] << 8) | buf[3];
          buf = buf.subarray(2 + len);
        }
        return buf;
      },
    });
    sock.on("error", () => {});
    sock.on("close", () => {
      closed = true;
      if (!upgraded) reject(new Error("Closed before the upgrade"));
      resolve({ written, closeCode, closed: true });
    });
  });
}
