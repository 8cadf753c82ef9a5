// The master's TFTP side, read-only: a read of "boot/..." is answered with the body of the
// master's own /boot/... route (the same per-PC decision as over HTTP), streamed block by
// block in lock-step (DATA n, wait for ACK n, resend on a timeout). Each transfer gets its own
// UDP port (the TFTP "transfer ID"), as RFC 1350 asks. See netboot/tftp.ts for why.

import dgram from "node:dgram";
import {
  encodeData,
  encodeError,
  encodeOack,
  ERR,
  negotiate,
  parseReply,
  parseRequest,
  routeOf,
} from "./tftp.ts";

export interface TftpServerOptions {
  hostname: string;
  port: number;
  /** Answer a route ("/boot/grub/aa:bb:cc:dd:ee:ff"): the master's /boot app. */
  fetch(path: string, client: string): Promise<Response>;
  log?(event: string, fields: Record<string, unknown>): void;
  /** Per block, before resending it (default 1000 ms), and resends before giving up (5). */
  timeoutMs?: number;
  retries?: number;
  /** Transfers at once; more get "busy" (default 64). */
  maxTransfers?: number;
}

export interface TftpServer {
  port: number;
  close(): Promise<void>;
}

type Socket = ReturnType<typeof dgram.createSocket>;

/** Largest answer without a content-length read whole to learn its size (for tsize). */
const MAX_BUFFERED = 4 * 1024 * 1024;

function bind(socket: Socket, port: number, hostname: string): Promise<number> {
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(port, hostname, () => {
      socket.off("error", reject);
      resolve(socket.address().port);
    });
  });
}

/** Reads a body stream as blocks of exactly `size` bytes (the last one shorter, maybe empty). */
async function* blocks(body: ReadableStream<Uint8Array> | null, size: number) {
  const reader = body?.getReader();
  let buf = new Uint8Array(size);
  let fill = 0;
  while (reader) {
    const { done, value } = await reader.read();
    if (done) break;
    let at = 0;
    while (at < value.length) {
      const n = Math.min(size - fill, value.length - at);
      buf.set(value.subarray(at, at + n), fill);
      fill += n;
      at += n;
      if (fill === size) {
        yield buf;
        buf = new Uint8Array(size);
        fill = 0;
      }
    }
  }
  yield buf.subarray(0, fill);
}

export async function serveTftp(o: TftpServerOptions): Promise<TftpServer> {
  const log = o.log ?? (() => {});
  const timeoutMs = o.timeoutMs ?? 1000;
  const retries = o.retries ?? 5;
  const maxTransfers = o.maxTransfers ?? 64;
  const transfers = new Set<Socket>();
  const main = dgram.createSocket("udp4");
  const port = await bind(main, o.port, o.hostname);

  async function transfer(packet: Uint8Array, address: string, clientPort: number) {
    const client = `${address}:${clientPort}`;
    const socket = dgram.createSocket("udp4");
    transfers.add(socket);
    // Resolves once the packet has left: closing the socket earlier would drop it.
    const send = (bytes: Uint8Array) =>
      new Promise<void>((r) => socket.send(bytes, clientPort, address, () => r()));
    // Replies from the client, one at a time; stray packets from elsewhere are ignored.
    let waiting: ((b: Uint8Array | null) => void) | null = null;
    const queue: Uint8Array[] = [];
    socket.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
      if (rinfo.address !== address || rinfo.port !== clientPort) return;
      if (waiting) {
        const w = waiting;
        waiting = null;
        w(msg);
      } else queue.push(msg);
    });
    const next = () =>
      queue.length ? Promise.resolve(queue.shift()!) : new Promise<Uint8Array | null>((r) => {
        const timer = setTimeout(() => {
          waiting = null;
          r(null);
        }, timeoutMs);
        waiting = (b) => {
          clearTimeout(timer);
          r(b);
        };
      });
    /** Send `bytes` until the client acknowledges `block`; false if it gave up or went quiet. */
    const sendUntilAck = async (bytes: Uint8Array, block: number) => {
      for (let attempt = 0; attempt <= retries; attempt++) {
        await send(bytes);
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
          const reply = await next();
          if (!reply) break;
          const r = parseReply(reply);
          if (r.kind === "ack" && r.block === (block & 0xffff)) return true;
          if (r.kind === "error") {
            log("tftp_aborted", { client, code: r.code, message: r.message });
            return false;
          }
        }
      }
      log("tftp_timeout", { client, block });
      return false;
    };
    try {
      await bind(socket, 0, o.hostname);
      let req;
      try {
        req = parseRequest(packet);
      } catch (e) {
        await send(encodeError(ERR.ILLEGAL, (e as Error).message));
        return;
      }
      if (req.kind === "write") {
        await send(encodeError(ERR.ACCESS, "Cascade's TFTP is read-only"));
        log("tftp_refused", { client, file: req.filename, why: "write" });
        return;
      }
      const route = routeOf(req.filename);
      const res = route ? await o.fetch(route, address) : null;
      if (!res || !res.ok) {
        const why = res ? (await res.text()).trim() : "only boot/... is served";
        await send(encodeError(ERR.NOT_FOUND, `No file "${req.filename}": ${why}`.slice(0, 400)));
        log("tftp_not_found", { client, file: req.filename, status: res?.status ?? 0 });
        return;
      }
      const length = res.headers.get("content-length");
      let size = length !== null ? Number(length) : undefined;
      let body = res.body;
      if (size === undefined && req.options.has("tsize")) {
        // GRUB reads a file of unknown size as empty: learn the size of a rendered (small)
        // answer by reading it whole.
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (bytes.length > MAX_BUFFERED) {
          await send(encodeError(ERR.NOT_DEFINED, `"${req.filename}" too big without a size`));
          return;
        }
        size = bytes.length;
        body = new Blob([bytes]).stream();
      }
      const { blksize, oack } = negotiate(req.options, size);
      log("tftp_read", { client, file: req.filename, size, blksize });
      if (oack && !(await sendUntilAck(encodeOack(oack), 0))) return;
      let block = 0, bytes = 0;
      for await (const data of blocks(body, blksize)) {
        block++;
        if (!(await sendUntilAck(encodeData(block, data), block))) return;
        bytes += data.length;
      }
      log("tftp_sent", { client, file: req.filename, bytes, blocks: block });
    } catch (e) {
      log("tftp_failed", { client, error: (e as Error).message });
    } finally {
      if (transfers.delete(socket)) socket.close();
    }
  }

  main.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
    if (transfers.size >= maxTransfers) {
      main.send(
        encodeError(ERR.NOT_DEFINED, "Busy: too many transfers, retry"),
        rinfo.port,
        rinfo.address,
      );
      return;
    }
    transfer(new Uint8Array(msg), rinfo.address, rinfo.port);
  });
  log("tftp_listening", { hostname: o.hostname, port });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of transfers) s.close();
        transfers.clear();
        main.close(() => resolve());
      }),
  };
}
