// What viewers of the run receive, at a cost that does not grow with them: one FeedHub per
// master computes, once per tick and only while someone watches, the dashboard feed's delta
// (feed.ts) and encodes it once; every viewer's stream then writes those same bytes. A viewer
// only asks for the next frames once its last write went out, so a slow viewer never piles up
// a queue: when it has fallen behind by more than the hub keeps, it gets a fresh snapshot.
//
// Routes: GET /api/v1/feed (the snapshot as JSON), GET /api/v1/feed/events (SSE: "snapshot",
// then "delta"s, "end"), GET /api/v1/events (SSE: the whole status as JSON per tick, "end").
import type { Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { FeedRunExtra, FeedSnapshot, LivePeer, LiveStatus } from "../protocol/mod.ts";
import { feedDiff, feedSnapshot } from "./feed.ts";

export interface Pace {
  /** At most one tick per minGap ms after an event, at least one per period ms. */
  minGap: number;
  period: number;
}

export interface FeedHubOptions {
  status: () => LiveStatus;
  /** Called on every core event; returns the unsubscribe function. */
  subscribe: (fn: () => void) => () => void;
  pace: Pace;
  /** How many deltas to keep for viewers a little behind (more behind: a snapshot). */
  keep?: number;
  /** A PC's group or switch, when the master knows one (the room groups its tiles by it). */
  groupOf?: (p: LivePeer) => string | undefined;
  /** What the run's part carries besides its status: its image name and every run at a glance
   * (several images), the groups. Asked once per tick. */
  extra?: () => FeedRunExtra;
}

interface Frame {
  seq: number;
  bytes: Uint8Array;
}

const encoder = new TextEncoder();

function sseFrame(event: string, id: string, data: string): Uint8Array {
  return encoder.encode(`event: ${event}\nid: ${id}\ndata: ${data}\n\n`);
}

export class FeedHub {
  #o: FeedHubOptions;
  #keep: number;
  #snap: FeedSnapshot | null = null;
  /** The last seq handed out: seqs never repeat within a hub, even after a reset. */
  #seq = 0;
  /** Names this hub in event ids, so a viewer of an earlier master never takes its deltas. */
  readonly epoch = Math.random().toString(36).slice(2, 10);
  #status: LiveStatus | null = null;
  #deltas: Frame[] = [];
  #snapFrame: Frame | null = null;
  #statusFrame: Frame | null = null;
  #waiters = new Set<() => void>();
  #viewers = 0;
  #unsubscribe: (() => void) | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #dueAt = Infinity;
  #last = -Infinity;
  /** Ticks computed, and bytes of feed frames written to viewers (for the benchmark). */
  readonly stats = { ticks: 0, deltaBytes: 0, snapshots: 0 };

  constructor(o: FeedHubOptions) {
    this.#o = o;
    this.#keep = o.keep ?? 4;
  }

  /** The seq of the current snapshot (0: none while nobody watches). */
  get seq(): number {
    return this.#snap?.seq ?? 0;
  }

  /** Why the run ended, once the current snapshot says it has. */
  get ended(): string | null {
    return this.#snap?.run.ended ?? null;
  }

  /** An SSE event id for `seq` in this hub. */
  id(seq: number): string {
    return `${this.epoch}.${seq}`;
  }

  /** The seq an SSE Last-Event-ID names in this hub, or 0. */
  seqOf(lastEventId: string | undefined): number {
    const m = /^([a-z0-9]+)\.(\d+)$/.exec(lastEventId ?? "");
    return m && m[1] === this.epoch ? Number(m[2]) : 0;
  }

  /** A viewer arrives: ticks run while at least one watches. Returns its leave function. */
  join(): () => void {
    if (this.#viewers++ === 0) {
      this.#unsubscribe = this.#o.subscribe(() => this.#schedule(this.#o.pace.minGap));
      this.tick();
    }
    let left = false;
    return () => {
      if (left) return;
      left = true;
      if (--this.#viewers > 0) return;
      this.#unsubscribe?.();
      this.#unsubscribe = null;
      clearTimeout(this.#timer);
      this.#dueAt = Infinity;
      // Nobody watches: the next viewer starts from a fresh snapshot.
      this.#snap = null;
      this.#status = null;
      this.#deltas = [];
      this.#snapFrame = this.#statusFrame = null;
      for (const wake of this.#waiters) wake();
    };
  }

  #schedule(gap: number) {
    if (this.#viewers === 0 || this.ended) return;
    const at = Math.max(performance.now(), this.#last + gap);
    if (at >= this.#dueAt) return;
    clearTimeout(this.#timer);
    this.#dueAt = at;
    this.#timer = setTimeout(() => {
      this.#dueAt = Infinity;
      this.tick();
    }, at - performance.now());
  }

  /** Compute the next snapshot and its delta, once for every viewer. */
  tick() {
    this.#last = performance.now();
    const status = this.#o.status();
    const next = feedSnapshot(status, ++this.#seq, this.#o.groupOf, this.#o.extra?.());
    if (this.#snap) {
      const delta = feedDiff(this.#snap, next);
      this.#deltas.push({
        seq: next.seq,
        bytes: sseFrame("delta", this.id(next.seq), JSON.stringify(delta)),
      });
      if (this.#deltas.length > this.#keep) this.#deltas.shift();
    }
    this.#snap = next;
    this.#status = status;
    this.#snapFrame = this.#statusFrame = null;
    this.stats.ticks++;
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
    this.#schedule(this.#o.pace.period);
  }

  /** The current snapshot (computing one if nobody watches). */
  snapshot(): FeedSnapshot {
    return this.#snap ?? feedSnapshot(this.#o.status(), 0, this.#o.groupOf, this.#o.extra?.());
  }

  #snapshotFrame(): Frame {
    if (!this.#snapFrame) {
      this.#snapFrame = {
        seq: this.seq,
        bytes: sseFrame("snapshot", this.id(this.seq), JSON.stringify(this.#snap)),
      };
    }
    return this.#snapFrame;
  }

  /** The whole status of this tick as one SSE frame, encoded once for all its viewers. */
  statusFrame(): Frame {
    if (!this.#statusFrame) {
      this.#statusFrame = {
        seq: this.seq,
        bytes: sseFrame("status", this.id(this.seq), JSON.stringify(this.#status)),
      };
    }
    return this.#statusFrame;
  }

  /** Resolves once there is a tick after `seq` (or the hub was reset, or `signal` fires). */
  wait(seq: number, signal: AbortSignal): Promise<void> {
    if (this.seq !== seq || signal.aborted || this.#snap === null) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.#waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /** The frames that bring a viewer at `seq` up to date: the deltas, or else a snapshot. */
  framesAfter(seq: number): Frame[] {
    if (!this.#snap || seq === this.seq) return [];
    const first = this.#deltas.findIndex((f) => f.seq === seq + 1);
    if (seq > 0 && first >= 0 && this.#deltas.at(-1)!.seq === this.seq) {
      return this.#deltas.slice(first);
    }
    this.stats.snapshots++;
    return [this.#snapshotFrame()];
  }
}

/** Viewers at once (dashboards, status streams), all runs together: each costs a socket and its
 * writes. More get a 503 saying so. */
export const MAX_VIEWERS = 64;

/** The event routes, on `app`, fed by the hub of the run a request names (or its refusal). */
export function eventRoutes(
  app: Hono<{ Bindings: Deno.ServeHandlerInfo }>,
  hubOf: (c: Context) => FeedHub | Response,
  maxViewers = MAX_VIEWERS,
) {
  let viewers = 0;
  const full = (c: Context) =>
    c.json(
      { error: `The master has ${maxViewers} viewers at once, its most: try again later` },
      503,
      { "retry-after": "10" },
    );
  /** A viewer's slot, taken now (so the cap holds for requests arriving at once). */
  const enter = (hub: FeedHub) => {
    viewers++;
    const leave = hub.join();
    let left = false;
    return () => {
      if (left) return;
      left = true;
      viewers--;
      leave();
    };
  };

  app.get("/api/v1/feed", (c) => {
    const hub = hubOf(c);
    return hub instanceof Response ? hub : c.json(hub.snapshot());
  });

  app.get("/api/v1/feed/events", (c) => {
    const hub = hubOf(c);
    if (hub instanceof Response) return hub;
    // A reconnecting EventSource says where it was: it may only need the deltas since.
    const last = hub.seqOf(c.req.header("last-event-id"));
    if (viewers >= maxViewers) return full(c);
    const leave = enter(hub);
    return streamSSE(c, async (stream) => {
      const abort = new AbortController();
      stream.onAbort(() => abort.abort());
      let seq = last;
      try {
        await stream.write("retry: 2000\n\n");
        while (!stream.aborted && !stream.closed) {
          for (const frame of hub.framesAfter(seq)) {
            await stream.write(frame.bytes);
            hub.stats.deltaBytes += frame.bytes.byteLength;
            seq = frame.seq;
          }
          if (hub.ended && seq === hub.seq) {
            await stream.writeSSE({ event: "end", data: JSON.stringify({ reason: hub.ended }) });
            break;
          }
          await hub.wait(seq, abort.signal);
        }
      } finally {
        leave();
      }
    });
  });

  app.get("/api/v1/events", (c) => {
    const hub = hubOf(c);
    if (hub instanceof Response) return hub;
    const view = c.req.query("view");
    if (view !== undefined) {
      return c.json({
        error: `Unknown view "${view}": the page now reads /api/v1/feed/events`,
      }, 400);
    }
    if (viewers >= maxViewers) return full(c);
    const leave = enter(hub);
    return streamSSE(c, async (stream) => {
      const abort = new AbortController();
      stream.onAbort(() => abort.abort());
      let seq = 0;
      try {
        await stream.write("retry: 2000\n\n");
        while (!stream.aborted && !stream.closed) {
          if (hub.seq !== seq && hub.seq > 0) {
            const frame = hub.statusFrame();
            await stream.write(frame.bytes);
            seq = frame.seq;
          }
          if (hub.ended && seq === hub.seq) {
            await stream.writeSSE({ event: "end", data: JSON.stringify({ reason: hub.ended }) });
            break;
          }
          await hub.wait(seq, abort.signal);
        }
      } finally {
        leave();
      }
    });
  });
}
