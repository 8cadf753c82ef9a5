// One transfer: every missing chunk from one chunk server, for a Receiver. Streams first (each
// run of missing chunks in one response, fetch_plan.ts), per-chunk requests when a server has
// no streams or a stream was cut; every chunk verified before it is written; the first real
// failure cancels the requests in flight, bad chunks are borne up to a bound.
import { chunkLength, chunkOffset, type Manifest } from "../../imagetools/mod.ts";
import { Md5Hasher } from "../../imagetools/hashing/mod.ts";
import type { Logger } from "../../imagetools/kit/mod.ts";
import { BufferPool } from "./buffer_pool.ts";
import {
  ChunkFetch,
  FetchCancelled,
  type FetchLike,
  type InFlight,
  newInFlight,
  type Received,
  watchIdle,
} from "./chunk_fetch.ts";
import { bufferSlots, fallbackQueue, planRuns } from "./fetch_plan.ts";
import type { HeldChunks } from "./held_chunks.ts";
import { isBadChunk, ReceiveError } from "./receive_error.ts";
import type { TargetDisk } from "./target_disk.ts";

export interface FetchOptions {
  signal?: AbortSignal;
  /** Give up on a request that receives nothing for this long (default 60000 ms; longer than
   * a relay's 30 s wait for a chunk it does not hold yet). */
  requestTimeoutMs?: number;
  /** The master's ticket for this assignment (the server serves nobody without one). */
  ticket?: string;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

/** What a transfer uses of its Receiver: settings, the held chunks, the target, the tallies. */
export interface TransferHost {
  readonly manifest: Manifest;
  readonly imageId: string;
  readonly target: TargetDisk;
  readonly held: HeldChunks;
  readonly inflight: number;
  readonly maxBad: number;
  readonly verifyMd5: boolean;
  readonly md5Threads: number;
  readonly log: Logger;
  readonly peerId?: string;
  readonly fetch?: FetchLike;
  bytesReceived(): number;
  /** `n` bytes of chunk `index` arrived. */
  received(index: number, n: number): void;
  /** A request ended that got some of chunk `index` (later bytes of it are refetches). */
  touched(index: number): void;
  /** A chunk failed verification. */
  badChunk(): void;
  /** Chunk `index` is verified and written: mark it held (and read it back behind). */
  written(index: number): void;
  progress(): void;
}

export class Transfer {
  constructor(private readonly host: TransferHost) {}

  /** Fetch every missing chunk from `base` (see Receiver.fetchFrom for the rules). */
  async run(base: string, opts: FetchOptions): Promise<void> {
    const h = this.host;
    const m = h.manifest;
    const queue = h.held.missing();
    if (queue.length === 0) return;
    const timeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const started = performance.now();
    const bytesBefore = h.bytesReceived();
    h.log("fetch.start", { peer: h.peerId, server: base, missing: queue.length });

    const hasher = h.verifyMd5 ? new Md5Hasher(h.md5Threads) : undefined;
    const pool = new BufferPool(bufferSlots(h.inflight, m.chunkSize), m.chunkSize);
    const active = new Set<InFlight>();
    const stages = new Set<Promise<void>>();
    const bad: ReceiveError[] = [];
    let failure: unknown;
    const fail = (err: unknown) => {
      if (failure !== undefined) return;
      failure = err;
      for (const r of active) r.ctl.abort();
    };
    const onAbort = () => fail(opts.signal!.reason);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const stopWatch = watchIdle(active, timeoutMs);
    const client = new ChunkFetch({
      manifest: m,
      imageId: h.imageId,
      base,
      ticket: opts.ticket,
      fetch: h.fetch,
      cancelled: () => failure !== undefined,
      onBytes: (index, n) => h.received(index, n),
      onTouched: (index) => h.touched(index),
    });

    const onBad = (err: ReceiveError) => {
      bad.push(err);
      if (bad.length > h.maxBad) fail(err);
    };
    const stage = (index: number, got: Received) => {
      const p = this.#verifyAndWrite(base, index, got, hasher)
        .then((buf) => pool.release(buf), (err) => {
          pool.release(null);
          if (isBadChunk(err)) onBad(err);
          else fail(err);
        });
      stages.add(p);
      p.finally(() => stages.delete(p));
    };

    // Streams first: each run of missing chunks in one response, in order, so a chunk arrives
    // whole after one chunk time (not `inflight` of them) and a relay forwards it sooner.
    let fallback = false;
    for (const run of planRuns(m, queue)) {
      if (failure !== undefined) break;
      const req = newInFlight(timeoutMs);
      active.add(req);
      try {
        await client.run(run, pool, req, stage);
      } catch (err) {
        if (err instanceof FetchCancelled) break;
        // An older server (no /v1/stream), or a stream cut short (the server went away, or a
        // relay's chunk did not arrive in time): per-chunk requests take over and say which.
        if (
          err instanceof ReceiveError && (err.reason === "http-404" || err.reason === "server-gone")
        ) {
          h.log("stream.fallback", {
            peer: h.peerId,
            server: base,
            reason: err.reason,
            error: err.message,
          });
          fallback = true;
          break;
        }
        fail(err);
      } finally {
        active.delete(req);
      }
    }

    let next = 0;
    let rest: number[] = [];
    const runner = async () => {
      while (failure === undefined && next < rest.length) {
        const index = rest[next++];
        if (h.held.holds(index)) continue;
        const buffer = await pool.acquire();
        if (failure !== undefined) {
          pool.release(buffer);
          break;
        }
        const req = newInFlight(timeoutMs);
        active.add(req);
        let got: Received;
        try {
          got = await client.chunk(index, buffer, req);
        } catch (err) {
          pool.release(null);
          if (isBadChunk(err)) {
            h.badChunk();
            h.log("chunk.bad", {
              peer: h.peerId,
              server: base,
              index,
              error: err.message,
            });
            onBad(err);
            continue;
          }
          if (!(err instanceof FetchCancelled)) fail(err);
          break;
        } finally {
          active.delete(req);
        }
        stage(index, got);
      }
    };
    try {
      while (stages.size > 0) await Promise.all([...stages]);
      if (fallback && failure === undefined) {
        // What the streams did not deliver; chunks found bad in this call are not asked again.
        rest = fallbackQueue(h.held.missing(), bad.map((e) => e.index));
        await Promise.all(Array.from({ length: Math.min(h.inflight, rest.length) }, runner));
        while (stages.size > 0) await Promise.all([...stages]);
      }
    } finally {
      stopWatch();
      opts.signal?.removeEventListener("abort", onAbort);
      hasher?.close();
    }
    const seconds = (performance.now() - started) / 1000;
    const bytes = h.bytesReceived() - bytesBefore;
    const err = failure ?? (bad.length > 0 ? this.#badSummary(base, bad) : undefined);
    if (err !== undefined) {
      h.log("fetch.failed", {
        peer: h.peerId,
        server: base,
        reason: err instanceof ReceiveError ? err.reason : "aborted",
        error: (err as Error).message,
        held: h.held.count,
      });
      throw err;
    }
    h.log("fetch.done", {
      peer: h.peerId,
      server: base,
      bytes,
      seconds: seconds.toFixed(3),
      mbps: (bytes / 1e6 / Math.max(seconds, 1e-9)).toFixed(1),
    });
  }

  #badSummary(base: string, bad: ReceiveError[]): ReceiveError {
    if (bad.length === 1) return bad[0];
    const list = bad.map((e) => e.index).join(", ");
    return new ReceiveError(
      "bad-chunk",
      `${bad[0].message} (${bad.length} bad chunks from ${base}: ${list})`,
      { index: bad[0].index, cause: bad[0] },
    );
  }

  /** Check MD5 (on the worker) and SHA-256, then write. Resolves to the buffer to reuse. */
  async #verifyAndWrite(
    base: string,
    index: number,
    got: Received,
    hasher: Md5Hasher | undefined,
  ): Promise<ArrayBuffer> {
    const h = this.host;
    const m = h.manifest;
    const entry = m.chunks[index];
    const length = chunkLength(m, index);
    let buffer = got.buffer;
    const badChunk = (algo: string, want: string, have: string) => {
      h.badChunk();
      h.log("chunk.bad", {
        peer: h.peerId,
        server: base,
        index,
        algo,
        expected: want,
        got: have,
      });
      h.progress();
      return new ReceiveError(
        "bad-chunk",
        `Cannot verify chunk ${index} of "${m.name}" from ${base}: expected ${algo} "${want}", got "${have}"`,
        { index },
      );
    };
    if (got.sha256 !== entry.sha256) throw badChunk("SHA-256", entry.sha256, got.sha256);
    if (hasher) {
      const r = await hasher.md5(buffer, length);
      buffer = r.buffer;
      if (r.md5 !== entry.md5) throw badChunk("MD5", entry.md5, r.md5);
    }
    try {
      await h.target.writeAt(chunkOffset(m, index), new Uint8Array(buffer, 0, length));
    } catch (cause) {
      throw new ReceiveError(
        "write-failed",
        `Cannot write chunk ${index} of "${m.name}" to "${h.target.path}" at byte ${
          chunkOffset(m, index)
        }: ${(cause as Error).message}`,
        { index, cause },
      );
    }
    h.written(index);
    return buffer;
  }
}
