// The data server: chunks over HTTP from any ChunkSource (slices, a disk, a relay's Receiver).
// Paths and the image header are roles/protocol/data_plane.ts's. A chunk the source does not
// hold yet (a relay) is waited for up to waitMs, then 503; in a stream or the whole image, a
// chunk that does not come cuts the response.
// With `tickets`, the chunk routes serve only requests with "Authorization: Bearer <ticket>"
// that the master issued for this server and the requesting address (roles/protocol/ticket.ts);
// manifest and health stay open (the manifest is public anyway).
// A request with "x-cascade-framed: 1" gets framed chunks (roles/protocol/data_plane.ts): each
// as the source holds it, zstd-compressed from slices or a relay, never compressed here. A
// relay sends a chunk it is still receiving as its bytes come (cut-through, live_chunks.ts): a
// chunk that fails at the relay cuts the response.
import { Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { HTTPException } from "hono/http-exception";
import { chunkLength } from "../../imagetools/mod.ts";
import { type Logger, silentLogger } from "../../imagetools/kit/mod.ts";
import {
  DATA_PATHS,
  type DataHealth,
  FRAME_HEAD_BYTES,
  FRAMED_HEADER,
  frameHead,
  frameOf,
  IMAGE_HEADER,
} from "../protocol/mod.ts";
import {
  type ChunkFeed,
  type ChunkSource,
  ChunkUnavailableError,
  DEFAULT_WAIT_MS,
  type ReadOptions,
} from "./chunk_source.ts";
import { answerFrame, blockCount, DELTA_DIGEST, deltaAnswer } from "./delta.ts";
import { type Gate, gatedServe, RELAY_SLOTS } from "./conn_gate.ts";
import { looksLikeDataGet, serveData } from "./direct_http.ts";
import { countedHandler } from "./serve_guard.ts";
import { EncodedBody } from "./encoded_body.ts";
import { defaultLimits, type ServeLimits, SlotCounter } from "./slots.ts";

export interface ChunkAppOptions {
  log?: Logger;
  peerId?: string;
  /** How long a request waits for a chunk the source does not hold yet (default 30000 ms). */
  waitMs?: number;
  /** Told the size of every chunk body handed out (metrics). */
  onServed?: (bytes: number) => void;
  /** Aborted when the server is closing: waiting requests give up at once (503). */
  closing?: AbortSignal;
  /** Check a chunk request's ticket against the address it comes from; absent: serve anyone. */
  tickets?: TicketCheck;
}

/** Is `ticket` good for a request from `address`? */
export type TicketCheck = (ticket: string, address: string) => boolean;

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function createChunkApp(
  source: ChunkSource,
  opts: ChunkAppOptions = {},
): Hono<{ Bindings: Partial<Deno.ServeHandlerInfo> }> {
  const log = opts.log ?? silentLogger;
  const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
  const served = opts.onServed ?? (() => {});
  const m = source.manifest;
  const total = m.chunks.length;
  const app = new Hono<{ Bindings: Partial<Deno.ServeHandlerInfo> }>();

  if (opts.tickets) {
    const check = opts.tickets;
    const refused = {
      message: { error: "This server serves only the clients the master sent it: no valid ticket" },
    };
    const auth = bearerAuth({
      verifyToken: (ticket, c) => {
        const info = c.env as Partial<Deno.ServeHandlerInfo<Deno.NetAddr>> | undefined;
        const ok = check(ticket, info?.remoteAddr?.hostname ?? "");
        if (!ok) log("ticket.refused", { peer: opts.peerId, path: c.req.path });
        return ok;
      },
      noAuthenticationHeader: refused,
      invalidAuthenticationHeader: refused,
      invalidToken: refused,
    });
    for (const path of [DATA_PATHS.chunk, DATA_PATHS.stream, DATA_PATHS.image, DATA_PATHS.delta]) {
      app.use(path, auth);
    }
  }

  // request.signal is not used: Deno.serve aborts it even on success (legacy behaviour) and
  // warns. A wait is bounded by waitMs anyway; closing the server ends waits at once.

  // The manifest for PCs that fetch it from peers (roles/peers/manifest_fetch.ts): compressed.
  const manifestBody = new EncodedBody(source.manifestBytes, "application/json", source.imageId);
  app.get(DATA_PATHS.manifest, (c) => manifestBody.respond(c, { [IMAGE_HEADER]: source.imageId }));

  app.get(DATA_PATHS.health, (c) => {
    const health: DataHealth = { imageId: source.imageId, held: source.heldCount(), total };
    return c.json(health, 200, { [IMAGE_HEADER]: source.imageId });
  });

  const badIndex = (raw: string) =>
    `Invalid chunk index "${raw}": image "${m.name}" has chunks 0..${total - 1}`;
  const indexOf = (raw: string) => /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  const framed = (c: { req: { header(name: string): string | undefined } }) =>
    c.req.header(FRAMED_HEADER) === "1";
  /** One chunk as its frame (head and stored bytes in one buffer), or the feed of a chunk a
   * relay is receiving now; or its plain bytes. */
  const readOne = async (
    index: number,
    inFrame: boolean,
    ro: ReadOptions,
  ): Promise<Uint8Array | ChunkFeed> => {
    if (!inFrame) return await source.read(index, ro);
    if (source.readFrame) return await source.readFrame(index, ro);
    const s = source.readLive
      ? await source.readLive(index, ro)
      : await source.readStored(index, ro);
    return "next" in s ? s : frameOf(s.zstd, s.bytes);
  };
  /** Read chunk `index` for a request (as its frame with `inFrame`), or the error answer (503
   * not held yet, 500). */
  const readFor = async <T>(
    index: number,
    read: (ro: ReadOptions) => Promise<T>,
  ): Promise<T | Response> => {
    try {
      return await read({ waitMs, signal: opts.closing });
    } catch (err) {
      if (err instanceof ChunkUnavailableError || opts.closing?.aborted) {
        log("chunk.unavailable", { peer: opts.peerId, index, error: errorMessage(err) });
        return Response.json(
          { error: `Chunk ${index} of "${m.name}" is not available here yet` },
          { status: 503 },
        );
      }
      log("chunk.error", { peer: opts.peerId, index, error: errorMessage(err) });
      return Response.json({ error: `Cannot read chunk ${index} of "${m.name}"` }, { status: 500 });
    }
  };
  const octets = (bytes: Uint8Array, inFrame = false) =>
    new Response(bytes as Uint8Array<ArrayBuffer>, {
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(bytes.length),
        [IMAGE_HEADER]: source.imageId,
        ...(inFrame ? { [FRAMED_HEADER]: "1" } : {}),
      },
    });

  app.get(DATA_PATHS.chunk, async (c) => {
    const raw = c.req.param("index");
    const index = indexOf(raw);
    if (!(index < total)) return c.json({ error: badIndex(raw) }, 400);
    // A zero chunk is never stored: framed or not, it goes as the zeros it is.
    const inFrame = framed(c) && !m.chunks[index].zero;
    const bytes = await readFor(index, (ro) => readOne(index, inFrame, ro));
    if (bytes instanceof Response) return bytes;
    if (!(bytes instanceof Uint8Array)) return feedResponse(bytes);
    served(bytes.length - (inFrame ? FRAME_HEAD_BYTES : 0)); // chunk bytes, as a client counts
    return octets(bytes, inFrame);
  });

  // POST /v1/delta/:index: the blocks of a chunk that differ from the client's version.
  app.post(DATA_PATHS.delta, async (c) => {
    const raw = c.req.param("index");
    const index = indexOf(raw);
    if (!(index < total)) return c.json({ error: badIndex(raw) }, 400);
    const want = blockCount(chunkLength(m, index)) * DELTA_DIGEST;
    const declared = c.req.header("content-length");
    const theirs = declared === undefined || Number(declared) === want
      ? new Uint8Array(await c.req.arrayBuffer())
      : undefined;
    if (theirs?.length !== want) {
      return c.json({
        error: `Invalid delta request for chunk ${index} of "${m.name}": ${
          theirs?.length ?? declared
        } bytes of block digests, expected ${want}`,
      }, 400);
    }
    const bytes = await readFor(index, (ro) => source.read(index, { ...ro, paced: false }));
    if (bytes instanceof Response) return bytes;
    const answer = deltaAnswer(bytes, theirs);
    // Framed for a client that asks (zstd when smaller); as it is for an older one.
    const inFrame = framed(c);
    const body = inFrame ? answerFrame(answer) : answer;
    await source.pace?.(body.length);
    served(body.length);
    return octets(body, inFrame);
  });

  /** Requests' waits end when the client goes away (cancel) or the server closes. */
  const requestSignal = () => {
    const gone = new AbortController();
    const signal = opts.closing ? AbortSignal.any([gone.signal, opts.closing]) : gone.signal;
    return { gone, signal };
  };
  /** Log a response cut short, and cut it. */
  const cut = (controller: ReadableStreamDefaultController, index: number, err: unknown) => {
    log("image.cut", { peer: opts.peerId, index, error: errorMessage(err) });
    controller.error(err);
  };

  /** One chunk a relay is receiving, framed, as its bytes come. */
  const feedResponse = (feed: ChunkFeed) => {
    const { gone, signal } = requestSignal();
    const next = feedPieces(feed);
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const piece = await next(signal);
          if (piece) return controller.enqueue(piece);
          served(feed.length);
          controller.close();
        } catch (err) {
          cut(controller, feed.index, err);
        }
      },
      cancel() {
        gone.abort();
        feed.close();
      },
    });
    return new Response(body, {
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(FRAME_HEAD_BYTES + feed.length),
        [IMAGE_HEADER]: source.imageId,
        [FRAMED_HEADER]: "1",
      },
    });
  };

  /** Chunks `indices` back to back in one response, in order (relay waits included); framed,
   * they are the non-zero chunks' frames (of lengths known only as they come). */
  const streamChunks = (
    indices: number[],
    headers: Record<string, string>,
    inFrames = false,
  ) => {
    const { gone, signal } = requestSignal();
    // Read a couple of chunks ahead so disk reads overlap the sending.
    const ahead: Promise<Uint8Array | ChunkFeed>[] = [];
    let next = 0;
    const fill = () => {
      while (ahead.length < 3 && next < indices.length) {
        const p = readOne(indices[next++], inFrames, { waitMs, signal });
        p.catch(() => {}); // Surfaced when its turn comes.
        ahead.push(p);
      }
    };
    let sent = 0;
    /** The chunk a relay is receiving, being sent as it comes. */
    let feed: { next: ReturnType<typeof feedPieces>; length: number; close(): void } | undefined;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          for (;;) {
            if (feed) {
              const piece = await feed.next(signal);
              if (piece) return controller.enqueue(piece);
              served(feed.length);
              feed = undefined;
              sent++;
              continue;
            }
            fill();
            const p = ahead.shift();
            if (!p) return controller.close();
            const bytes = await p;
            if (!(bytes instanceof Uint8Array)) {
              feed = { next: feedPieces(bytes), length: bytes.length, close: bytes.close };
              continue;
            }
            served(bytes.length - (inFrames ? FRAME_HEAD_BYTES : 0));
            controller.enqueue(bytes);
            sent++;
            return;
          }
        } catch (err) {
          // Cut the stream: a short image with a clean end would pass for a whole one.
          cut(controller, indices[sent], err);
        }
      },
      cancel() {
        gone.abort();
        // The feeds this response holds or read ahead ask no more.
        feed?.close();
        for (const p of ahead) p.then((b) => b instanceof Uint8Array || b.close(), () => {});
      },
    });
    let length = 0;
    for (const i of indices) length += chunkLength(m, i);
    return new Response(body, {
      headers: {
        "content-type": "application/octet-stream",
        ...(inFrames ? { [FRAMED_HEADER]: "1" } : { "content-length": String(length) }),
        [IMAGE_HEADER]: source.imageId,
        ...headers,
      },
    });
  };

  app.get(DATA_PATHS.image, () =>
    streamChunks(Array.from({ length: total }, (_, i) => i), {
      "content-disposition": `attachment; filename="${m.name.replace(/["\\]/g, "_")}"`,
    }));

  // GET /v1/stream?from=A&to=B: the non-zero chunks of A..B-1, back to back, in order.
  app.get(DATA_PATHS.stream, (c) => {
    const a = c.req.query("from") ?? "";
    const b = c.req.query("to") ?? "";
    const from = /^\d{1,15}$/.test(a) ? Number(a) : NaN;
    const to = /^\d{1,15}$/.test(b) ? Number(b) : NaN;
    if (!(from >= 0 && to <= total && from < to)) {
      return c.json({
        error: `Invalid chunk range from "${a}" to "${b}": image "${m.name}" has chunks 0..${
          total - 1
        } (to is exclusive)`,
      }, 400);
    }
    const indices: number[] = [];
    for (let i = from; i < to; i++) if (!m.chunks[i].zero) indices.push(i);
    return streamChunks(indices, {}, framed(c));
  });

  app.notFound((c) => c.json({ error: `No such path "${c.req.path}"` }, 404));
  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse(); // a refused ticket: 400/401
    log("request.error", { peer: opts.peerId, path: c.req.path, error: errorMessage(err) });
    return c.json({ error: "Internal error" }, 500);
  });
  return app;
}

/** A chunk arriving at a relay as its frame: the head, then its bytes as they may go (the last
 * one once the relay verified it), then null. Throws when the chunk failed at the relay. */
function feedPieces(feed: ChunkFeed): (signal: AbortSignal) => Promise<Uint8Array | null> {
  let from = -1;
  return async (signal) => {
    if (from < 0) {
      from = 0;
      return frameHead(feed.zstd, feed.length);
    }
    const piece = await feed.next(from, signal);
    if (piece) from += piece.length;
    return piece;
  };
}

export interface ChunkServer {
  url: string;
  port: number;
  /** Chunk bytes handed out so far. */
  servedBytes(): number;
  /** Stop accepting, let responses in flight finish (waiting ones get 503), then shut down. */
  close(): Promise<void>;
}

/** Connections one address may hold open to a chunk server: as many as the requests it may
 * have at once (serve_guard.ts), so an honest client's pool is never refused. */
export const CONNECTIONS_PER_ADDRESS = 64;

export function startChunkServer(opts: {
  source: ChunkSource;
  hostname?: string;
  port?: number;
  log?: Logger;
  waitMs?: number;
  peerId?: string;
  tickets?: TicketCheck;
  /** Requests at once per address and in all (default: serve_guard.ts's defaultLimits). */
  limits?: Partial<ServeLimits>;
  /** Connections' descriptors per address and in all (default: CONNECTIONS_PER_ADDRESS
   * connections, the descriptor limit less a reserve); conn_gate.ts. */
  connections?: Partial<ServeLimits>;
  /** The gate's deadline for a connection's first head, and its idle time (tests). */
  headMs?: number;
  idleMs?: number;
}): Promise<ChunkServer> {
  return Promise.resolve(chunkServer(opts));
}

function chunkServer(opts: Parameters<typeof startChunkServer>[0]): ChunkServer {
  const log = opts.log ?? silentLogger;
  const hostname = opts.hostname ?? "0.0.0.0";
  let servedBytes = 0;
  const closing = new AbortController();
  const app = createChunkApp(opts.source, {
    log,
    peerId: opts.peerId,
    waitMs: opts.waitMs,
    closing: closing.signal,
    tickets: opts.tickets,
    onServed: (n) => servedBytes += n,
  });
  // Connections are counted from their accept (idle ones too: Deno.serve sees only requests),
  // requests behind them as before (a 503 past the cap, which a client waits out), whether
  // Deno.serve answers them or the data path on the gate's connection (direct_http.ts).
  const handler = countedHandler(
    new SlotCounter(defaultLimits(opts.limits ?? {})),
    (req, info) => app.fetch(req, info),
  );
  const server: Gate = gatedServe({
    hostname,
    port: opts.port ?? 0,
    handler,
    counter: new SlotCounter(
      defaultLimits({ perAddress: CONNECTIONS_PER_ADDRESS * RELAY_SLOTS, ...opts.connections }),
    ),
    requests: null,
    takeOver: (conn, bytes, end, _slot, relay) =>
      looksLikeDataGet(bytes)
        ? serveData({ conn, bytes, end, handler, relay, tracked: server.track(conn) })
        : null,
    headMs: opts.headMs,
    idleMs: opts.idleMs,
    log,
    name: opts.peerId,
  });
  const addr = server.addr;
  const host = hostname === "0.0.0.0" ? "127.0.0.1" : hostname === "::" ? "[::1]" : hostname;
  const url = `http://${
    host.includes(":") && !host.startsWith("[") ? `[${host}]` : host
  }:${addr.port}`;
  log("listen", { peer: opts.peerId, url, image: opts.source.imageId });
  let closed: Promise<void> | undefined;
  return {
    url,
    port: addr.port,
    servedBytes: () => servedBytes,
    close() {
      closed ??= (async () => {
        closing.abort();
        // shutdown() is graceful (aborting Deno.serve's signal would cut streams in flight).
        await server.shutdown();
        log("closed", { peer: opts.peerId, servedBytes });
      })();
      return closed;
    },
  };
}
