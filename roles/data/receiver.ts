// The client's data path: fetch chunks over HTTP, verify each (SHA-256, and MD5 by default)
// before a byte of it is written, write it at its offset, mark it held. A Receiver is also
// the relay's ChunkSource: a request for a chunk not held yet waits until it is.
//
// This file is the orchestration; its parts have one job each: held_chunks.ts (what is held,
// who waits), chunk_fetch.ts (the HTTP client), fetch_plan.ts (runs and buffers, pure),
// buffer_pool.ts, rate_meter.ts, read_back.ts (verify-behind and the checks on the target).
//
// Speed (see scripts/bench_client.ts): several requests in flight; bytes are read with a BYOB
// reader straight into pooled buffers and SHA-256 runs as they arrive; MD5 (the costlier hash)
// runs on a Worker with the buffer transferred, so two cores share the hashing.
import {
  chunkLength,
  chunkOffset,
  imageIdOf,
  type Manifest,
  parseManifest,
} from "../../imagetools/mod.ts";
import { Md5Hasher } from "../../imagetools/hashing/mod.ts";
import { type Logger, type Progress, silentLogger } from "../../imagetools/kit/mod.ts";
import { dataBase } from "../protocol/mod.ts";
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
import {
  checkChunkIndex,
  type ChunkSource,
  DEFAULT_WAIT_MS,
  type ReadOptions,
} from "./chunk_source.ts";
import { bufferSlots, fallbackQueue, planRuns } from "./fetch_plan.ts";
import { HeldChunks } from "./held_chunks.ts";
import { RateMeter } from "./rate_meter.ts";
import { checkOnTarget, VerifyBehind } from "./read_back.ts";
import { isBadChunk, ReceiveError } from "./receive_error.ts";
import type { TargetDisk } from "./target_disk.ts";

export interface ReceiverStats {
  /** Verified chunks on the target, zero chunks included. */
  heldChunks: number;
  totalChunks: number;
  /** Chunk bytes received over HTTP (good or bad). */
  bytesReceived: number;
  /** Bytes received for chunks that had been fetched (in part or whole) before. */
  bytesRefetched: number;
  /** Chunks that failed verification. */
  badChunks: number;
  /** Bytes per second received over the last few seconds. */
  rate: number;
}

export interface ReceiverOptions {
  /** The manifest's exact bytes, already checked by the caller against the pinned image id. */
  manifestBytes: Uint8Array;
  target: TargetDisk;
  /** Requests in flight at once (default 4). */
  inflight?: number;
  /** Check MD5 as well as SHA-256 (default true). */
  verifyMd5?: boolean;
  /** Worker threads for MD5 (default 1; 0 hashes on the main thread). */
  md5Threads?: number;
  /** A server that sends more bad chunks than this in one fetchFrom is given up at once. */
  maxBadChunks?: number;
  log?: Logger;
  onProgress?: (s: ReceiverStats) => void;
  peerId?: string;
  /** The HTTP client (default: the global fetch; tests pass a Hono app's request). */
  fetch?: FetchLike;
  /** The clock of the rate meter (default performance.now). */
  now?: () => number;
}

export interface FetchOptions {
  signal?: AbortSignal;
  /** Give up on a request that receives nothing for this long (default 60000 ms; longer than
   * a relay's 30 s wait for a chunk it does not hold yet). */
  requestTimeoutMs?: number;
}

export const DEFAULT_INFLIGHT = 4;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

export class Receiver implements ChunkSource {
  readonly manifest: Manifest;
  readonly manifestBytes: Uint8Array;
  readonly imageId: string;
  readonly target: TargetDisk;
  #inflight: number;
  #verifyMd5: boolean;
  #md5Threads: number;
  #maxBad: number;
  #log: Logger;
  #onProgress?: (s: ReceiverStats) => void;
  #peerId?: string;
  #fetch?: FetchLike;
  #held: HeldChunks;
  /** Chunks of which some bytes were received before (refetches count as waste). */
  #attempted: Uint8Array;
  #bytesReceived = 0;
  #bytesRefetched = 0;
  #badChunks = 0;
  #rate: RateMeter;
  #fetching: Promise<void> = Promise.resolve();
  #behind: VerifyBehind;
  /** The target was created empty, so unwritten zero chunks already read as zeros. */
  #zerosOnDisk: boolean;

  constructor(opts: ReceiverOptions) {
    this.manifestBytes = opts.manifestBytes;
    this.manifest = parseManifest(new TextDecoder().decode(opts.manifestBytes));
    this.imageId = imageIdOf(opts.manifestBytes);
    this.target = opts.target;
    this.#inflight = opts.inflight ?? DEFAULT_INFLIGHT;
    if (!Number.isInteger(this.#inflight) || this.#inflight < 1) {
      throw new RangeError(`Invalid inflight ${opts.inflight}: must be a whole number >= 1`);
    }
    this.#verifyMd5 = opts.verifyMd5 ?? true;
    this.#md5Threads = opts.md5Threads ?? 1;
    this.#maxBad = opts.maxBadChunks ?? 3;
    this.#log = opts.log ?? silentLogger;
    this.#onProgress = opts.onProgress;
    this.#peerId = opts.peerId;
    this.#fetch = opts.fetch;
    this.#rate = new RateMeter(opts.now);
    this.#held = new HeldChunks(this.manifest);
    this.#attempted = new Uint8Array(this.manifest.chunks.length);
    this.#behind = new VerifyBehind(this.target, this.manifest, (i) => this.#held.holds(i));
    this.#zerosOnDisk = this.target.fresh === true;
    if (this.target.size < this.manifest.size) {
      throw new RangeError(
        `Cannot use target "${this.target.path}": it holds ${this.target.size} bytes but the image "${this.manifest.name}" needs ${this.manifest.size}`,
      );
    }
  }

  // ---- ChunkSource (the relay side) ----------------------------------------------------------

  has(index: number): boolean {
    return this.#held.has(index);
  }

  heldCount(): number {
    return this.#held.count;
  }

  async read(index: number, opts: ReadOptions = {}): Promise<Uint8Array> {
    checkChunkIndex(this.manifest, index);
    const length = chunkLength(this.manifest, index);
    if (this.manifest.chunks[index].zero) return new Uint8Array(length);
    await this.#held.waitFor(index, opts.waitMs ?? DEFAULT_WAIT_MS, opts.signal);
    const out = new Uint8Array(length);
    const n = await this.target.readAt(chunkOffset(this.manifest, index), out);
    if (n !== length) {
      throw new Error(
        `Cannot read chunk ${index} of "${this.manifest.name}" from "${this.target.path}": it ends after ${n} of ${length} bytes`,
      );
    }
    return out;
  }

  // ---- state ----------------------------------------------------------------------------------

  stats(): ReceiverStats {
    return {
      heldChunks: this.#held.count,
      totalChunks: this.#held.total,
      bytesReceived: this.#bytesReceived,
      bytesRefetched: this.#bytesRefetched,
      badChunks: this.#badChunks,
      rate: this.#rate.rate(),
    };
  }

  /** Non-zero chunks not held yet, in order. */
  missing(): number[] {
    return this.#held.missing();
  }

  #unmark(index: number) {
    this.#behind.forget(index);
    this.#held.unmark(index);
  }

  #countBytes(index: number, n: number) {
    this.#bytesReceived += n;
    if (this.#attempted[index] === 1) this.#bytesRefetched += n;
  }

  #progress() {
    this.#rate.sample(this.#bytesReceived);
    this.#onProgress?.(this.stats());
  }

  // ---- zero chunks, resume, read-back ---------------------------------------------------------

  /** Write the zero chunks locally (they are never transferred) and mark them held. On a fresh
   * target (created empty, so already zeros) nothing needs writing. */
  async fillZeros(): Promise<void> {
    const m = this.manifest;
    let zeros: Uint8Array | undefined;
    for (let i = 0; i < m.chunks.length; i++) {
      if (!m.chunks[i].zero || this.#held.holds(i)) continue;
      if (!this.#zerosOnDisk) {
        const length = chunkLength(m, i);
        if (!zeros || zeros.length !== length) zeros = new Uint8Array(length);
        try {
          await this.target.writeAt(chunkOffset(m, i), zeros);
        } catch (cause) {
          throw new ReceiveError(
            "write-failed",
            `Cannot write zero chunk ${i} of "${m.name}" to "${this.target.path}": ${
              (cause as Error).message
            }`,
            { index: i, cause },
          );
        }
      }
      this.#held.mark(i);
    }
    this.#progress();
  }

  /** Resume after a crash or reboot: hash what the target holds and mark the chunks that match
   * the manifest held. Returns how many chunks it marked. A fresh target holds only zeros, so
   * only its zero chunks are marked (without reading). */
  async scanExisting(opts: { progress?: Progress } = {}): Promise<number> {
    const m = this.manifest;
    let marked = 0;
    if (this.#zerosOnDisk) {
      for (let i = 0; i < m.chunks.length; i++) {
        if (m.chunks[i].zero && this.#held.mark(i)) marked++;
      }
      opts.progress?.update(m.size);
      this.#progress();
      return marked;
    }
    const todo: number[] = [];
    for (let i = 0; i < m.chunks.length; i++) if (!this.#held.holds(i)) todo.push(i);
    await this.#checkOnTarget(todo, opts.progress, (i, ok) => {
      if (ok) {
        this.#held.mark(i);
        marked++;
      }
    });
    this.#log("scan.done", { peer: this.#peerId, marked, held: this.#held.count });
    this.#progress();
    return marked;
  }

  /** Read the whole target back and check every chunk against the manifest (MD5 and SHA-256,
   * as the seed's client did before turning server). Bad chunks are unmarked and returned.
   * Chunks already read back since they were written (verify-behind) are skipped, once: a
   * later readBack reads everything again. */
  async readBack(opts: { progress?: Progress } = {}): Promise<number[]> {
    const bad: number[] = [];
    await this.#behind.settle();
    const all = this.#behind.takeUnchecked();
    this.#log("readback.left", { peer: this.#peerId, chunks: all.length });
    await this.#checkOnTarget(all, opts.progress, (i, ok) => {
      if (ok) return;
      bad.push(i);
      this.#unmark(i);
      // Something wrote there after all: zeros must be written, not assumed.
      this.#zerosOnDisk = false;
    });
    this.#log("readback.done", { peer: this.#peerId, bad: bad.length });
    this.#progress();
    return bad;
  }

  #checkOnTarget(
    indices: number[],
    progress: Progress | undefined,
    result: (index: number, ok: boolean) => void,
  ): Promise<void> {
    return checkOnTarget(this.target, this.manifest, indices, {
      md5: this.#verifyMd5,
      md5Threads: this.#md5Threads,
      progress,
    }, result);
  }

  // ---- fetching -------------------------------------------------------------------------------

  /**
   * Fetch every missing chunk from the chunk server at `serverUrl`, `inflight` requests at once;
   * verify each before writing it at its offset; mark it held (which wakes relay readers).
   * Resolves when every chunk is held (zero chunks are filled at the end if fillZeros was not
   * called). A bad chunk is not written and the others go on; after maxBadChunks bad ones, or
   * any other failure, the requests in flight are cancelled, verified chunks are written, and
   * a ReceiveError is thrown (bad-chunk last, when that was the only trouble). Calls run one at
   * a time: a second call waits until the first has settled (abort the first to switch servers).
   */
  async fetchFrom(serverUrl: string, opts: FetchOptions = {}): Promise<void> {
    // One fetch at a time: a new one (after the caller aborted the last) waits for the last to
    // settle, so two never write the same chunk and no verified chunk is fetched twice.
    const previous = this.#fetching;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#fetching = promise;
    try {
      await previous;
      opts.signal?.throwIfAborted();
      await this.#fetchAll(dataBase(serverUrl), opts);
      await this.fillZeros();
    } finally {
      // No read-behind left in flight once fetchFrom settles (the caller may close the target).
      await this.#behind.settle();
      resolve();
    }
  }

  async #fetchAll(base: string, opts: FetchOptions): Promise<void> {
    const m = this.manifest;
    const queue = this.missing();
    if (queue.length === 0) return;
    const timeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const started = performance.now();
    const bytesBefore = this.#bytesReceived;
    this.#log("fetch.start", { peer: this.#peerId, server: base, missing: queue.length });

    const hasher = this.#verifyMd5 ? new Md5Hasher(this.#md5Threads) : undefined;
    const pool = new BufferPool(bufferSlots(this.#inflight, m.chunkSize), m.chunkSize);
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
      imageId: this.imageId,
      base,
      fetch: this.#fetch,
      cancelled: () => failure !== undefined,
      onBytes: (index, n) => this.#countBytes(index, n),
      onTouched: (index) => this.#attempted[index] = 1,
    });

    const onBad = (err: ReceiveError) => {
      bad.push(err);
      if (bad.length > this.#maxBad) fail(err);
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
          this.#log("stream.fallback", {
            peer: this.#peerId,
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
        if (this.#held.holds(index)) continue;
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
            this.#badChunks++;
            this.#log("chunk.bad", {
              peer: this.#peerId,
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
        rest = fallbackQueue(this.missing(), bad.map((e) => e.index));
        await Promise.all(Array.from({ length: Math.min(this.#inflight, rest.length) }, runner));
        while (stages.size > 0) await Promise.all([...stages]);
      }
    } finally {
      stopWatch();
      opts.signal?.removeEventListener("abort", onAbort);
      hasher?.close();
    }
    const seconds = (performance.now() - started) / 1000;
    const bytes = this.#bytesReceived - bytesBefore;
    const err = failure ?? (bad.length > 0 ? this.#badSummary(base, bad) : undefined);
    if (err !== undefined) {
      this.#log("fetch.failed", {
        peer: this.#peerId,
        server: base,
        reason: err instanceof ReceiveError ? err.reason : "aborted",
        error: (err as Error).message,
        held: this.#held.count,
      });
      throw err;
    }
    this.#log("fetch.done", {
      peer: this.#peerId,
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
    const m = this.manifest;
    const entry = m.chunks[index];
    const length = chunkLength(m, index);
    let buffer = got.buffer;
    const badChunk = (algo: string, want: string, have: string) => {
      this.#badChunks++;
      this.#log("chunk.bad", {
        peer: this.#peerId,
        server: base,
        index,
        algo,
        expected: want,
        got: have,
      });
      this.#progress();
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
      await this.target.writeAt(chunkOffset(m, index), new Uint8Array(buffer, 0, length));
    } catch (cause) {
      throw new ReceiveError(
        "write-failed",
        `Cannot write chunk ${index} of "${m.name}" to "${this.target.path}": ${
          (cause as Error).message
        }`,
        { index, cause },
      );
    }
    this.#held.mark(index);
    this.#behind.queue(index);
    this.#progress();
    return buffer;
  }
}
