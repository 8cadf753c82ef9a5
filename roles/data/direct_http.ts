// A chunk server's data path on the gate's own connection (conn_gate.ts's takeOver): the GETs
// of chunks, streams and the image are answered by the app on the client's socket itself, its
// Response written there, so a relay's bulk bytes no longer cross loopback to Deno.serve and
// back (the gate's relay cost a relay about 0.3 CPU s/GB: BENCHMARKS.md). Every other request,
// and the rest of its connection, is relayed to Deno.serve as before. The gate's limits stay:
// the connection's slot, its first head's deadline, the idle sweep (track), and the handler
// given here is the same counted one Deno.serve runs (tickets, request caps).
//
// HTTP/1.1 only as far as a body-less GET needs it: keep-alive, a body by content-length or
// chunked, and a response cut short (a chunk that failed at a relay) closes the connection, so
// a client never takes a short body for a whole one.
import { DATA_PATHS, parseHead, type RequestHead } from "../protocol/mod.ts";
import {
  answerAndClose,
  closeQuietly,
  headTooBig,
  readHead,
  type Tracked,
  writeAll,
} from "./conn_gate.ts";
import type { ServeHandler } from "./serve_guard.ts";
import { releasePiece } from "./live_chunks.ts";

/** Pieces up to this size go out in one write with what precedes them (a head, a chunk-size
 * line): a copy of a few KiB costs less than a write. */
const COALESCE = 16 * 1024;
/** The chunk route's path up to its index ("/v1/chunks/"). */
const CHUNK_PATH = DATA_PATHS.chunk.slice(0, DATA_PATHS.chunk.indexOf(":"));
const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** Does this first head look like a data GET (decided for sure by `isDataGet`)? */
export function looksLikeDataGet(bytes: Uint8Array): boolean {
  const line = latin1.decode(bytes.subarray(0, 24));
  return line.startsWith(`GET ${CHUNK_PATH}`) || line.startsWith(`GET ${DATA_PATHS.stream}`) ||
    line.startsWith(`GET ${DATA_PATHS.image}`);
}

/** A GET of a chunk, a stream or the image, with no body, that this module answers. */
export function isDataGet(head: RequestHead): boolean {
  if (head.method !== "GET" || head.version !== "HTTP/1.1") return false;
  const h = head.headers;
  if (h.has("transfer-encoding") || h.has("upgrade") || h.has("expect")) return false;
  if ((h.get("content-length") ?? "0") !== "0") return false;
  const path = head.target.split("?")[0];
  return path === DATA_PATHS.stream || path === DATA_PATHS.image ||
    (path.startsWith(CHUNK_PATH) && path.length > CHUNK_PATH.length);
}

/** Serve data GETs on `conn` from its first head (`bytes`, head ending at `end`) until it closes
 * or asks for something else, which `relay` (given the bytes from that head on) takes. */
export async function serveData(o: {
  conn: Deno.TcpConn;
  bytes: Uint8Array;
  end: number;
  handler: ServeHandler;
  relay: (bytes: Uint8Array) => Promise<void>;
  tracked: Tracked;
}): Promise<void> {
  const { conn, tracked } = o;
  const remoteAddr = conn.remoteAddr as Deno.NetAddr;
  let bytes = o.bytes;
  let end = o.end;
  try {
    for (;;) {
      const head = parseHead(bytes.subarray(0, end));
      if (!head || !isDataGet(head)) {
        tracked.end();
        return await o.relay(bytes);
      }
      const keep = !tracked.stopping && !/\bclose\b/i.test(head.headers.get("connection") ?? "");
      const completed = Promise.withResolvers<void>();
      let kept = false;
      try {
        const res = await o.handler(toRequest(head), { remoteAddr, completed: completed.promise });
        kept = await writeResponse(conn, res, keep, tracked);
      } finally {
        completed.resolve();
      }
      if (!kept || tracked.stopping) return closeQuietly(conn);
      tracked.between(true);
      const next = await readHead(conn, bytes.slice(end), tracked.touch);
      tracked.between(false);
      if (!next) return closeQuietly(conn);
      if (next === "too big") return await answerAndClose(conn, headTooBig());
      ({ bytes, end } = next);
    }
  } catch {
    closeQuietly(conn);
  } finally {
    tracked.end();
  }
}

function toRequest(head: RequestHead): Request {
  const host = head.headers.get("host") ?? "";
  const base = /^[\w.:[\]-]+$/.test(host) ? host : "localhost";
  return new Request(`http://${base}${head.target}`, {
    headers: [...head.headers],
  });
}

/** Write `res` whole; true when the connection may serve another request. A body that fails
 * (cut short) or a client gone ends the connection. */
async function writeResponse(
  conn: Deno.Conn,
  res: Response,
  keep: boolean,
  tracked: Tracked,
): Promise<boolean> {
  const length = res.headers.get("content-length");
  const chunked = res.body !== null && length === null;
  let head = `HTTP/1.1 ${res.status} ${res.statusText || "OK"}\r\n`;
  for (const [k, v] of res.headers) head += `${k}: ${v}\r\n`;
  if (res.body === null && length === null) head += "content-length: 0\r\n";
  if (chunked) head += "transfer-encoding: chunked\r\n";
  if (!keep) head += "connection: close\r\n";
  head += "\r\n";
  const send = async (prefix: string, piece?: Uint8Array) => {
    const p = encoder.encode(prefix);
    if (piece && piece.length <= COALESCE) {
      const both = new Uint8Array(p.length + piece.length);
      both.set(p);
      both.set(piece, p.length);
      await writeAll(conn, both);
    } else {
      if (p.length) await writeAll(conn, p);
      if (piece) await writeAll(conn, piece);
    }
    tracked.touch();
  };
  // The head goes at once, as Deno.serve sends it: a body cut before its first byte still
  // answers with its status.
  if (!res.body) {
    await send(head);
    return keep;
  }
  const reader = res.body.getReader();
  let prefix = "";
  try {
    await send(head);
    for (;;) {
      let got: ReadableStreamReadResult<Uint8Array>;
      try {
        got = await reader.read();
      } catch {
        return false; // cut short: the client must not take what came for a whole body
      }
      if (got.done) break;
      const piece = got.value;
      if (piece.length === 0) continue;
      await send(chunked ? `${prefix}${piece.length.toString(16)}\r\n` : prefix, piece);
      releasePiece(piece); // written: a relay's chunk buffer under it may be reused
      prefix = chunked ? "\r\n" : "";
    }
    await send(chunked ? `${prefix}0\r\n\r\n` : prefix);
    return keep;
  } catch (err) {
    reader.cancel(err).catch(() => {}); // the client is gone: the stream's waits end
    throw err;
  }
}
