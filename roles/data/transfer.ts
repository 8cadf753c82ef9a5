// One transfer: every missing chunk from one chunk server, for a Receiver. `inflight` requests
// at once: streams of runs of missing chunks (fetch_plan.ts), a chunk's sub-chunk delta where the
// target holds an older version (delta.ts, while delta_gauge.ts says they pay), single chunks
// where streams fail. While the scan runs, only chunks it judged missing are asked for. Each chunk
// is verified before it is written; a real failure cancels the rest, bad chunks up to a bound.
import { chunkLength, chunkOffset, type Manifest } from "../../imagetools/mod.ts";
import type { Md5Hasher } from "../../imagetools/hashing/mod.ts";
import { giveMd5Hasher, takeMd5Hasher } from "./md5_pool.ts";
import type { Logger } from "../../imagetools/kit/mod.ts";
import { BufferPool } from "./buffer_pool.ts";
import {
  ChunkFetch,
  type ChunkPace,
  FetchCancelled,
  type FetchLike,
  type InFlight,
  newInFlight,
  type Received,
  watchIdle,
} from "./chunk_fetch.ts";
import { bufferSlots, chunksOf, planWork, type WorkItem } from "./fetch_plan.ts";
import { blockRuns } from "./delta.ts";
import { DeltaGauge } from "./delta_gauge.ts";
import type { HeldChunks } from "./held_chunks.ts";
import type { LiveChunks } from "./live_chunks.ts";
import { isBadChunk, ReceiveError } from "./receive_error.ts";
import type { TargetDisk } from "./target_disk.ts";
import type { TargetScan } from "./target_scan.ts";
import { readOwn, type VerifiedBytes, type WrittenRun } from "./read_back.ts";

export interface FetchOptions {
  signal?: AbortSignal;
  /** Give up on a request that receives nothing for this long (default 60000 ms; longer than
   * a relay's 30 s wait for a chunk it does not hold yet). */
  requestTimeoutMs?: number;
  /** The master's ticket for this assignment (the server serves nobody without one). */
  ticket?: string;
  /** How fast a chunk must come once begun (default DEFAULT_PACE). */
  pace?: ChunkPace;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** Requests in flight when the target was scanned (deltas): this many times `inflight`. */
export const DELTA_INFLIGHT_FACTOR = 4;

/** What a transfer uses of its Receiver: settings, the held chunks, the target, the tallies. */
export interface TransferHost {
  readonly manifest: Manifest;
  readonly imageId: string;
  readonly target: TargetDisk;
  readonly held: HeldChunks;
  /** The chunks arriving now, sent on by a relay as they come (cut-through). */
  readonly live: LiveChunks;
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
  /** Chunk `index` is verified and written: mark it held (and read it back behind); `stored`:
   * the zstd bytes it came as (a relay sends them on); `runs`: a delta's writes (copies), read
   * back in place of the whole chunk; `verified`: the chunk's verified bytes, lent to compare
   * the read-back with (true: taken, they are released later; else the buffer is reused). */
  written(
    index: number,
    stored?: Uint8Array,
    runs?: readonly WrittenRun[],
    verified?: VerifiedBytes,
  ): boolean | void;
  progress(): void;
  /** The scan of what the target holds, if one ran (chunks it has not judged wait for it). */
  scan?(): TargetScan | undefined;
}

/** A response that broke off (not refused, not bad, not silent). */
const isCut = (err: unknown) => err instanceof ReceiveError && err.reason === "server-gone";

export class Transfer {
  /** No chunk of this transfer written yet (its first is logged: bench:lab's phases). */
  #first = true;

  constructor(private readonly host: TransferHost) {}

  /** Fetch every missing chunk from `base` (see Receiver.fetchFrom for the rules). */
  async run(base: string, opts: FetchOptions): Promise<void> {
    const h = this.host;
    const m = h.manifest;
    const scan = h.scan?.();
    if (h.held.missing().length === 0 && !scan?.running) return;
    const timeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const started = performance.now();
    const bytesBefore = h.bytesReceived();
    h.log("fetch.start", { peer: h.peerId, server: base, missing: h.held.missing().length });

    const hasher = h.verifyMd5 ? takeMd5Hasher(h.md5Threads) : undefined;
    // A re-image's requests are mostly deltas, a few KiB each and latency-bound: more at once
    // (163 deltas of a 1 GiB disk: 4 in flight 9.2-9.7 s, 16 3.7-5.4 s, 32 4.0-4.3 s).
    const workers = scan ? h.inflight * DELTA_INFLIGHT_FACTOR : h.inflight;
    const pool = new BufferPool(bufferSlots(workers, m.chunkSize), m.chunkSize);
    const active = new Set<InFlight>();
    const stages = new Set<Promise<void>>();
    const bad: ReceiveError[] = [];
    let failure: unknown;
    const fail = (err: unknown) => {
      if (failure !== undefined) return;
      failure = err;
      for (const r of active) r.ctl.abort();
      poke();
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
      onFrame: (index, zstd, length) => h.live.begin(index, zstd, length),
      onPiece: (index, bytes) => h.live.piece(index, bytes),
      onCut: (index, why) => h.live.end(index, why),
    });

    // What this transfer has asked for (or will not ask again: sent bad by this server).
    const taken = new Uint8Array(m.chunks.length);
    let streams = true;
    let deltas = scan !== undefined;
    const gauge = new DeltaGauge(); // deltas stop where most blocks changed (another image)
    let items: WorkItem[] = [];
    let busy = 0;
    let wakers: (() => void)[] = [];
    function poke() {
      const w = wakers;
      wakers = [];
      for (const f of w) f();
    }
    // The chunks this transfer may still ask for, pruned as they become held: next() runs at
    // every scan verdict and every written chunk, and the whole manifest's missing() each
    // time was 0.4-0.8 s of a 4 GiB re-image's CPU (4,094 chunks, ~2,000 calls).
    let todo = h.held.missing();
    /** The chunks of `todo` that may be asked for now (not taken, judged by the scan). */
    const readyNow = () => {
      const ready: number[] = [];
      let k = 0;
      for (const i of todo) {
        if (h.held.holds(i)) continue;
        todo[k++] = i;
        if (!taken[i] && !scan?.pending(i)) ready.push(i);
      }
      todo.length = k;
      return ready;
    };
    /** The next request to make, or null when there is nothing left to ask for. */
    const next = async (): Promise<WorkItem | null> => {
      for (;;) {
        if (failure !== undefined) return null;
        const it = items.shift(); // a delta planned before deltas stopped goes whole
        if (it) return it.kind === "delta" && !deltas ? { kind: "chunk", index: it.index } : it;
        let ready = readyNow();
        if (ready.length === 0 && !scan?.running && busy === 0 && stages.size === 0) {
          // Nothing in flight: the last word is the whole manifest's (a chunk unmarked
          // meanwhile is missing again).
          todo = h.held.missing();
          ready = readyNow();
        }
        if (ready.length > 0) {
          items = planWork(m, ready, {
            older: (i) => scan?.older(i) ?? false,
            delta: deltas,
            streams,
          });
          for (const it of items) for (const i of chunksOf(it)) taken[i] = 1;
          continue;
        }
        if (scan?.failure !== undefined) {
          fail(scan.failure);
          return null;
        }
        // Wait for the scan's next verdict, or for a request that may hand chunks back.
        // (A chunk being verified may come back too: a delta that does not verify.)
        if (!scan?.running && busy === 0 && stages.size === 0) return null;
        await new Promise<void>((resolve) => {
          wakers.push(resolve);
          if (scan?.running) scan.changed().then(resolve);
        });
      }
    };

    const onBad = (err: ReceiveError) => {
      bad.push(err);
      if (bad.length > h.maxBad) fail(err);
    };
    const stage = (index: number, got: Received, delta: boolean) => {
      const p = this.#verifyAndWrite(base, index, got, hasher, pool)
        .then((buf) => pool.release(buf), (err) => {
          pool.release(null);
          h.live.end(index, (err as Error).message);
          if (isBadChunk(err) && delta) {
            // A delta that does not verify: the whole chunk decides, now (not held against the
            // server: a digest may have matched by chance).
            h.log("delta.bad", { peer: h.peerId, server: base, index, error: err.message });
            scan?.forgetOlder(index);
            taken[index] = 0;
            poke();
          } else if (isBadChunk(err)) onBad(err);
          else fail(err);
        });
      stages.add(p);
      p.finally(() => {
        stages.delete(p);
        poke();
      });
    };
    /** A request that broke off: chunks it did not deliver may be asked again. */
    const giveBack = (chunks: readonly number[], handed: Set<number>) => {
      for (const i of chunks) if (!handed.has(i)) taken[i] = 0;
    };
    /** An older server (no /v1/stream or /v1/delta), or a stream cut short: say so, ask the
     * rest another way. Anything else ends the transfer. */
    const switched = (err: unknown, what: "stream" | "delta"): boolean => {
      if (!(err instanceof ReceiveError)) return false;
      if (err.reason !== "http-404" && !(what === "stream" && err.reason === "server-gone")) {
        return false;
      }
      h.log(`${what}.fallback`, {
        peer: h.peerId,
        server: base,
        reason: err.reason,
        error: err.message,
      });
      if (what === "stream") streams = false;
      else deltas = false;
      return true;
    };

    const perform = async (item: WorkItem) => {
      const req = newInFlight(timeoutMs, opts.pace);
      active.add(req);
      const handed = new Set<number>();
      try {
        if (item.kind === "run") {
          await client.run(item.chunks, pool, req, (i, got) => {
            handed.add(i);
            stage(i, got, false);
          });
          return;
        }
        const index = item.index;
        const buffer = await pool.acquire();
        if (failure !== undefined) {
          pool.release(buffer);
          return;
        }
        let got: Received;
        try {
          got = item.kind === "delta"
            ? await client.delta(index, await readOwn(h.target, m, index, buffer), req)
            : await client.chunk(index, buffer, req);
        } catch (err) {
          pool.release(null);
          throw err;
        }
        handed.add(index);
        if (deltas && gauge.turnsOff(got.patched, chunkLength(m, index))) {
          deltas = false;
          h.log("delta.off", { peer: h.peerId, server: base, changed: gauge.share.toFixed(2) });
        }
        stage(index, got, item.kind === "delta");
      } catch (err) {
        giveBack(chunksOf(item), handed);
        if (err instanceof FetchCancelled) return;
        if (item.kind !== "run" && isBadChunk(err)) {
          h.badChunk();
          h.log("chunk.bad", {
            peer: h.peerId,
            server: base,
            index: item.index,
            error: err.message,
          });
          if (item.kind === "delta") scan?.forgetOlder(item.index);
          taken[item.index] = 1; // not asked again of this server
          onBad(err);
          return;
        }
        if (item.kind === "run" && handed.size > 0 && isCut(err)) {
          // A relay cuts a stream when a chunk it was sending as it came failed there (its
          // upstream went, or sent it bad): the stream worked, so the rest is streamed again,
          // from the chunk cut (each such stream delivered a chunk: no loop).
          h.log("stream.cut", { peer: h.peerId, server: base, error: (err as Error).message });
          return;
        }
        const way = item.kind === "run" ? "stream" : item.kind === "delta" ? "delta" : null;
        if (way === null || !switched(err, way)) fail(err);
      } finally {
        active.delete(req);
      }
    };
    const worker = async () => {
      for (let item = await next(); item; item = await next()) {
        busy++;
        try {
          await perform(item);
        } finally {
          busy--;
          poke();
        }
      }
    };

    try {
      await Promise.all(Array.from({ length: workers }, worker));
      while (stages.size > 0) await Promise.all([...stages]);
    } finally {
      stopWatch();
      opts.signal?.removeEventListener("abort", onAbort);
      if (hasher) giveMd5Hasher(hasher);
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

  /** Check MD5 (on the worker) and SHA-256, then write. Resolves to the buffer to reuse, or
   * null when verify-behind took it (lent from `pool`, given back once compared). */
  async #verifyAndWrite(
    base: string,
    index: number,
    got: Received,
    hasher: Md5Hasher | undefined,
    pool: BufferPool,
  ): Promise<ArrayBuffer | null> {
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
    if (got.bad !== undefined) {
      h.badChunk();
      h.log("chunk.bad", { peer: h.peerId, server: base, index, error: got.bad });
      h.progress();
      throw new ReceiveError(
        "bad-chunk",
        `Cannot verify chunk ${index} of "${m.name}" from ${base}: ${got.bad}`,
        { index },
      );
    }
    if (got.sha256 !== entry.sha256) throw badChunk("SHA-256", entry.sha256, got.sha256);
    if (hasher) {
      const r = await hasher.md5(buffer, length);
      buffer = r.buffer;
      if (r.md5 !== entry.md5) throw badChunk("MD5", entry.md5, r.md5);
    }
    h.live.verified(index); // its last byte may go on now, before it is written
    const runs = got.patched ? blockRuns(length, got.patched) : [[0, length]];
    try {
      // A verified delta writes only the blocks it patched: the others are the bytes just read
      // from this very target (nothing else writes it), and verify-behind reads back what was
      // written (below). A month of updates changes a few 4 KiB
      // pages of most changed chunks: ~16 x fewer bytes written than whole chunks (SSD wear).
      for (const [start, len] of runs) {
        await h.target.writeAt(chunkOffset(m, index) + start, new Uint8Array(buffer, start, len));
      }
    } catch (cause) {
      throw new ReceiveError(
        "write-failed",
        `Cannot write chunk ${index} of "${m.name}" to "${h.target.path}" at byte ${
          chunkOffset(m, index)
        }: ${(cause as Error).message}`,
        { index, cause },
      );
    }
    // A delta's runs are read back and compared with copies of what was written (the rest of
    // the chunk was read from this target and verified whole): 0.6 s of SHA-256 and 850 MB of
    // reads in a 4 GiB re-image's client, had verify-behind checked each patched chunk whole.
    // A whole chunk's read-back is compared with its verified bytes, this very buffer, while
    // verify-behind has room to hold it (no copy, no second SHA-256).
    const done = buffer;
    const lent = h.written(
      index,
      got.stored,
      got.patched
        ? runs.map(([at, len]) => ({ at, bytes: new Uint8Array(buffer, at, len).slice() }))
        : undefined,
      got.patched ? undefined : {
        bytes: new Uint8Array(done, 0, length),
        release: () => pool.giveBack(done),
      },
    );
    if (this.#first) {
      this.#first = false;
      h.log("fetch.first", { peer: h.peerId, server: base, index });
    }
    return lent === true ? null : buffer;
  }
}
