// The probe route (roles/peers/probe.ts is the PC's side): a fixed blob served to one PC at a
// time, so each PC times its own port and not a share of the master's.
//
// One at a time means until the PC has the blob, not until the master's last write: the socket
// buffers hold hundreds of KiB, so a turn that ended at the last write let the next PC's probe
// share the master's port with the tail of this one. Measured in bench:lab's slow room (12 PCs on
// 100 Mbit/s, one on 10): every probe came at 1.1-9.2 MB/s, the 10 Mbit/s PC's (1.03) above a
// quarter of the median, so it was not made a leaf and sat in the chain until the slow rule saw
// it (the others 8.7 s instead of 6.0 in 2 of 3 runs). Now the PC says when it has the blob
// (POST with the turn's token); a PC that never says (an older client) frees the turn
// `tailMs` after the last write, and any PC after `turnMs` in all.
import type { Hono } from "hono";
import { PROBE_PATH, PROBE_TURN_HEADER } from "../protocol/mod.ts";

/** The probe blob: 1 MiB, 88 ms at 100 Mbit/s, 0.9 s at 10 Mbit/s (random: nothing shrinks it). */
export const PROBE_BYTES = 1 << 20;
const PROBE_PIECE = 64 * 1024;
const PROBE_QUEUE = 64;
const PROBE_BLOB = (() => {
  const b = new Uint8Array(PROBE_BYTES);
  for (let off = 0; off < b.length; off += PROBE_PIECE) {
    crypto.getRandomValues(b.subarray(off, off + PROBE_PIECE));
  }
  return b;
})();

export interface ProbeTimes {
  /** After the last write, how long a PC that does not say "done" keeps its turn (ms). */
  tailMs: number;
  /** A turn's longest (ms). */
  turnMs: number;
}

/** 1.5 s: a socket buffer's worth (up to ~1 MiB) drains in 0.9 s even at 10 Mbit/s. */
export const PROBE_TIMES: ProbeTimes = { tailMs: 1_500, turnMs: 10_000 };

/** GET serves the blob in turn; POST `?turn=TOKEN` ends that turn. Bounded: a queue of
 * PROBE_QUEUE, the rest get 503 (their PCs go without a probe). */
export function probeRoutes<E extends object>(app: Hono<E>, times: ProbeTimes = PROBE_TIMES) {
  let queued = 0;
  let tail = Promise.resolve();
  /** The turn being served: its token and how to end it. */
  let current: { token: string; end: () => void } | null = null;

  app.get(PROBE_PATH, async (c) => {
    if (queued >= PROBE_QUEUE) return c.json({ error: "Probe queue full: try later" }, 503);
    queued++;
    const turn = tail;
    let release!: () => void;
    tail = new Promise<void>((r) => (release = r));
    await turn;
    const token = crypto.randomUUID();
    let ended = false;
    let tailTimer: ReturnType<typeof setTimeout> | undefined;
    const end = () => {
      if (ended) return;
      ended = true;
      clearTimeout(turnTimer);
      clearTimeout(tailTimer);
      if (current?.token === token) current = null;
      queued--;
      release();
    };
    current = { token, end };
    const turnTimer = setTimeout(end, times.turnMs);
    let off = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(ctl) {
        ctl.enqueue(PROBE_BLOB.subarray(off, off + PROBE_PIECE));
        off += PROBE_PIECE;
        if (off >= PROBE_BLOB.length) {
          ctl.close();
          tailTimer = setTimeout(end, times.tailMs);
        }
      },
      cancel: end,
    }, { highWaterMark: 0 });
    return new Response(body, {
      headers: {
        "content-type": "application/octet-stream",
        "cache-control": "no-store",
        [PROBE_TURN_HEADER]: token,
      },
    });
  });

  // Only the current turn's token ends it: a stale or guessed one changes nothing.
  app.post(PROBE_PATH, (c) => {
    const token = c.req.query("turn");
    if (!token || current?.token !== token) {
      return c.json({ error: `No probe turn "${token ?? ""}" is being served` }, 409);
    }
    current.end();
    return c.body(null, 204);
  });
}
