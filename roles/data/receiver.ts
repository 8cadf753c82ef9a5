// The client's data path: fetch chunks over HTTP, verify each (SHA-256, and MD5 by default)
// before a byte of it is written, write it at its offset, mark it held. A Receiver is also
// the relay's ChunkSource: a request for a chunk not held yet waits until it is.
//
// Speed (see scripts/bench_client.ts): several requests in flight; bytes are read with a BYOB
// reader straight into pooled buffers and SHA-256 runs as they arrive; MD5 (the costlier hash)
// runs on a Worker with the buffer transferred, so two cores share the hashing.
import { createHash } from "node:crypto";
import {
  chunkLength,
  chunkOffset,
  imageIdOf,
  type Manifest,
  parseManifest,
} from "../../imagetools/mod.ts";
import { isAllZero } from "../../imagetools/hashing/mod.ts";
import { type Logger, type Progress, silentLogger } from "../../imagetools/kit/mod.ts";
import {
  checkChunkIndex,
  type ChunkSource,
  ChunkUnavailableError,
  DEFAULT_WAIT_MS,
  type ReadOptions,
} from "./chunk_source.ts";
import { Md5Hasher } from "../../imagetools/hashing/mod.ts";
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
}

export interface FetchOptions {
  signal?: AbortSignal;
  /** Give up on a request that receives nothing for this long (default 60000 ms; longer than
   * a relay's 30 s wait for a chunk it does not hold yet). */
  requestTimeoutMs?: number;
}

/** "server-gone" | "bad-chunk" | "timeout" | "http-<status>" | "write-failed" | "wrong-image" */
export type ReceiveReason = string;

/** Why fetchFrom stopped. Chunks verified before the failure stay held. */
export class ReceiveError extends Error {
  override name = "ReceiveError";
  readonly reason: ReceiveReason;
  readonly index?: number;
  constructor(
    reason: ReceiveReason,
    message: string,
    opts: { index?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.reason = reason;
    if (opts.index !== undefined) this.index = opts.index;
  }
}

export const DEFAULT_INFLIGHT = 4;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
const RATE_WINDOW_MS = 3000;

/** Reused chunk buffers. BYOB reads and worker transfers hand back new handles to the same
 * memory, so a buffer comes back as whatever handle its last user holds (or null if lost). */
class BufferPool {
  #free: ArrayBuffer[] = [];
  #waiting: ((b: ArrayBuffer) => void)[] = [];
  constructor(count: number, private readonly size: number) {
    for (let i = 0; i < count; i++) this.#free.push(new ArrayBuffer(size));
  }
  acquire(): Promise<ArrayBuffer> {
    const b = this.#free.pop();
    return b ? Promise.resolve(b) : new Promise((resolve) => this.#waiting.push(resolve));
  }
  release(b: ArrayBuffer | null): void {
    const buf = b && b.byteLength === this.size ? b : new ArrayBuffer(this.size);
    const next = this.#waiting.shift();
    if (next) next(buf);
    else this.#free.push(buf);
  }
}

/** One request in flight: its own abort, and when it last received bytes (for timeouts). */
interface Request {
  ctl: AbortController;
  last: number;
  timedOut: boolean;
  timeoutMs: number;
}

/** A request in flight, watched by the idle timer from now on. */
function newRequest(timeoutMs: number): Request {
  return { ctl: new AbortController(), last: performance.now(), timedOut: false, timeoutMs };
}

function isBadChunk(err: unknown): err is ReceiveError {
  return err instanceof ReceiveError && err.reason === "bad-chunk";
}

/** Thrown inside fetchFrom by requests cut short because another one already failed. */
class Cancelled extends Error {}

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
  #held: Uint8Array;
  #heldCount = 0;
  /** Chunks of which some bytes were received before (refetches count as waste). */
  #attempted: Uint8Array;
  #waiters = new Map<number, Set<() => void>>();
  #bytesReceived = 0;
  #bytesRefetched = 0;
  #badChunks = 0;
  #rateSamples: [number, number][] = [];
  #fetching: Promise<void> = Promise.resolve();
  /** Verify-behind: chunks read back from the target (SHA-256) after they were written and
   * found good, so readBack() need not read them again. */
  #readOk: Uint8Array;
  #behindQueue: number[] = [];
  /** Settles when the verify-behind queue is empty (never rejects). */
  #behindDone: Promise<void> = Promise.resolve();
  #behindStop = false;
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
    const n = this.manifest.chunks.length;
    this.#held = new Uint8Array(n);
    this.#attempted = new Uint8Array(n);
    this.#readOk = new Uint8Array(n);
    this.#zerosOnDisk = this.target.fresh === true;
    if (this.target.size < this.manifest.size) {
      throw new RangeError(
        `Cannot use target "${this.target.path}": it holds ${this.target.size} bytes but the image "${this.manifest.name}" needs ${this.manifest.size}`,
      );
    }
  }

  // ---- ChunkSource (the relay side) ----------------------------------------------------------

  has(index: number): boolean {
    return Number.isSafeInteger(index) && index >= 0 && index < this.#held.length &&
      (this.#held[index] === 1 || this.manifest.chunks[index].zero);
  }

  heldCount(): number {
    return this.#heldCount;
  }

  async read(index: number, opts: ReadOptions = {}): Promise<Uint8Array> {
    checkChunkIndex(this.manifest, index);
    const length = chunkLength(this.manifest, index);
    if (this.manifest.chunks[index].zero) return new Uint8Array(length);
    if (!this.#held[index]) await this.#waitFor(index, opts.waitMs ?? DEFAULT_WAIT_MS, opts.signal);
    const out = new Uint8Array(length);
    const n = await this.target.readAt(chunkOffset(this.manifest, index), out);
    if (n !== length) {
      throw new Error(
        `Cannot read chunk ${index} of "${this.manifest.name}" from "${this.target.path}": it ends after ${n} of ${length} bytes`,
      );
    }
    return out;
  }

  #waitFor(index: number, waitMs: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      let set = this.#waiters.get(index);
      if (!set) this.#waiters.set(index, set = new Set());
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        set.delete(wake);
        if (set.size === 0 && this.#waiters.get(index) === set) this.#waiters.delete(index);
      };
      const wake = () => {
        done();
        resolve();
      };
      const onAbort = () => {
        done();
        reject(signal!.reason);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new ChunkUnavailableError(
            `Chunk ${index} of "${this.manifest.name}" did not arrive within ${waitMs} ms`,
          ),
        );
      }, waitMs);
      set.add(wake);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  // ---- state ----------------------------------------------------------------------------------

  stats(): ReceiverStats {
    return {
      heldChunks: this.#heldCount,
      totalChunks: this.#held.length,
      bytesReceived: this.#bytesReceived,
      bytesRefetched: this.#bytesRefetched,
      badChunks: this.#badChunks,
      rate: this.#rate(),
    };
  }

  /** Non-zero chunks not held yet, in order. */
  missing(): number[] {
    const out: number[] = [];
    const chunks = this.manifest.chunks;
    for (let i = 0; i < chunks.length; i++) if (!this.#held[i] && !chunks[i].zero) out.push(i);
    return out;
  }

  #markHeld(index: number) {
    if (this.#held[index]) return;
    this.#held[index] = 1;
    this.#heldCount++;
    const set = this.#waiters.get(index);
    if (set) { for (const wake of [...set]) wake(); }
  }

  #unmark(index: number) {
    this.#readOk[index] = 0;
    if (!this.#held[index]) return;
    this.#held[index] = 0;
    this.#heldCount--;
  }

  #countBytes(n: number, refetch: boolean) {
    this.#bytesReceived += n;
    if (refetch) this.#bytesRefetched += n;
  }

  #sampleRate() {
    const now = performance.now();
    const s = this.#rateSamples;
    s.push([now, this.#bytesReceived]);
    // Keep one sample older than the window so the rate spans it whole.
    while (s.length > 2 && now - s[1][0] > RATE_WINDOW_MS) s.shift();
  }

  #rate(): number {
    const s = this.#rateSamples;
    if (s.length < 2) return 0;
    const [t0, b0] = s[0];
    const [t1, b1] = s[s.length - 1];
    // Idle since the last sample: nothing is arriving now.
    if (performance.now() - t1 > RATE_WINDOW_MS) return 0;
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }

  #progress() {
    this.#sampleRate();
    this.#onProgress?.(this.stats());
  }

  // ---- zero chunks, resume, read-back ---------------------------------------------------------

  /** Write the zero chunks locally (they are never transferred) and mark them held. On a fresh
   * target (created empty, so already zeros) nothing needs writing. */
  async fillZeros(): Promise<void> {
    const m = this.manifest;
    let zeros: Uint8Array | undefined;
    for (let i = 0; i < m.chunks.length; i++) {
      if (!m.chunks[i].zero || this.#held[i]) continue;
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
      this.#markHeld(i);
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
        if (m.chunks[i].zero && !this.#held[i]) {
          this.#markHeld(i);
          marked++;
        }
      }
      opts.progress?.update(m.size);
      this.#progress();
      return marked;
    }
    const todo: number[] = [];
    for (let i = 0; i < m.chunks.length; i++) if (!this.#held[i]) todo.push(i);
    await this.#checkOnTarget(todo, opts.progress, (i, ok) => {
      if (ok) {
        this.#markHeld(i);
        marked++;
      }
    });
    this.#log("scan.done", { peer: this.#peerId, marked, held: this.#heldCount });
    this.#progress();
    return marked;
  }

  /** Verify-behind: read a chunk just written back from the target in the background, one at
   * a time, so the read-back at the end is short (12 PCs reading a whole disk back at the end
   * on 2 cores cost 0.7-3.7 s). SHA-256 only: MD5 was checked on arrival. */
  #queueBehind(index: number) {
    if (this.#behindStop) return;
    this.#behindQueue.push(index);
    if (this.#behindQueue.length > 1) return; // The running loop takes it.
    this.#behindDone = (async () => {
      const m = this.manifest;
      const buf = new Uint8Array(m.chunkSize);
      try {
        while (this.#behindQueue.length > 0 && !this.#behindStop) {
          const i = this.#behindQueue[0];
          const length = chunkLength(m, i);
          const view = buf.subarray(0, length);
          const n = await this.target.readAt(chunkOffset(m, i), view);
          if (
            n === length && this.#held[i] &&
            createHash("sha256").update(view).digest("hex") === m.chunks[i].sha256
          ) this.#readOk[i] = 1;
          this.#behindQueue.shift();
        }
      } catch {
        // The target failed or was closed: stop; readBack() checks whatever is left.
        this.#behindStop = true;
      } finally {
        this.#behindQueue.length = 0;
      }
    })();
  }

  /** Wait until the verify-behind reads have stopped (none left in flight). */
  #settleBehind(): Promise<void> {
    return this.#behindDone;
  }

  /** Read the whole target back and check every chunk against the manifest (MD5 and SHA-256,
   * as the seed's client did before turning server). Bad chunks are unmarked and returned.
   * Chunks already read back since they were written (verify-behind) are skipped, once: a
   * later readBack reads everything again. */
  async readBack(opts: { progress?: Progress } = {}): Promise<number[]> {
    const bad: number[] = [];
    await this.#settleBehind();
    const all: number[] = [];
    for (let i = 0; i < this.manifest.chunks.length; i++) if (!this.#readOk[i]) all.push(i);
    this.#log("readback.left", { peer: this.#peerId, chunks: all.length });
    this.#readOk.fill(0);
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

  /** Read chunks from the target (a couple ahead) and check each against the manifest. */
  async #checkOnTarget(
    indices: number[],
    progress: Progress | undefined,
    result: (index: number, ok: boolean) => void,
  ): Promise<void> {
    const m = this.manifest;
    const hasher = this.#verifyMd5 ? new Md5Hasher(this.#md5Threads) : undefined;
    const ahead = 3;
    const pool = new BufferPool(ahead, m.chunkSize);
    let next = 0;
    let scanned = 0;
    const worker = async () => {
      while (next < indices.length) {
        const i = indices[next++];
        const length = chunkLength(m, i);
        let buffer: ArrayBuffer | null = await pool.acquire();
        try {
          const view = new Uint8Array(buffer, 0, length);
          const n = await this.target.readAt(chunkOffset(m, i), view);
          const entry = m.chunks[i];
          let ok = n === length;
          if (ok && entry.zero) ok = isAllZero(view);
          else if (ok) {
            ok = createHash("sha256").update(view).digest("hex") === entry.sha256;
            if (ok && hasher) {
              const r = await hasher.md5(buffer, length);
              buffer = r.buffer;
              ok = r.md5 === entry.md5;
            }
          }
          result(i, ok);
          scanned += length;
          progress?.update(scanned);
        } catch (err) {
          buffer = null;
          throw err;
        } finally {
          pool.release(buffer);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: ahead }, worker));
    } finally {
      hasher?.close();
    }
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
      await this.#fetchAll(serverUrl.replace(/\/+$/, ""), opts);
      await this.fillZeros();
    } finally {
      // No read-behind left in flight once fetchFrom settles (the caller may close the target).
      await this.#settleBehind();
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
    const slots = Math.max(
      this.#inflight + 1,
      Math.min(this.#inflight * 2, Math.floor((512 << 20) / m.chunkSize)),
    );
    const pool = new BufferPool(slots, m.chunkSize);
    const active = new Set<Request>();
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
    const ticker = setInterval(() => {
      const now = performance.now();
      for (const r of active) {
        if (now - r.last > timeoutMs) {
          r.timedOut = true;
          r.ctl.abort();
        }
      }
    }, Math.max(10, Math.min(1000, timeoutMs / 4)));

    const onBad = (err: ReceiveError) => {
      bad.push(err);
      if (bad.length > this.#maxBad) fail(err);
    };
    const stage = (index: number, got: { buffer: ArrayBuffer; sha256: string }) => {
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
    for (const run of this.#runs(queue)) {
      if (failure !== undefined) break;
      const req = newRequest(timeoutMs);
      active.add(req);
      try {
        await this.#receiveRun(base, run, pool, req, () => failure !== undefined, stage);
      } catch (err) {
        if (err instanceof Cancelled) break;
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
        if (this.#held[index]) continue;
        const buffer = await pool.acquire();
        if (failure !== undefined) {
          pool.release(buffer);
          break;
        }
        const req = newRequest(timeoutMs);
        active.add(req);
        let got: { buffer: ArrayBuffer; sha256: string };
        try {
          got = await this.#receive(base, index, buffer, req, () => failure !== undefined);
        } catch (err) {
          pool.release(null);
          if (isBadChunk(err)) {
            onBad(err);
            continue;
          }
          if (!(err instanceof Cancelled)) fail(err);
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
        const refused = new Set(bad.map((e) => e.index));
        rest = this.missing().filter((i) => !refused.has(i));
        await Promise.all(Array.from({ length: Math.min(this.#inflight, rest.length) }, runner));
        while (stages.size > 0) await Promise.all([...stages]);
      }
    } finally {
      clearInterval(ticker);
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
        held: this.#heldCount,
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

  /** GET one chunk into `buffer`, hashing SHA-256 as the bytes arrive. */
  async #receive(
    base: string,
    index: number,
    buffer: ArrayBuffer,
    req: Request,
    cancelled: () => boolean,
  ): Promise<{ buffer: ArrayBuffer; sha256: string }> {
    const m = this.manifest;
    const url = `${base}/v1/chunks/${index}`;
    const expected = chunkLength(m, index);
    const what = `chunk ${index} of "${m.name}" from ${url}`;
    const at = { got: 0 };
    const fromError = (err: unknown): Error => {
      if (isBadChunk(err)) {
        this.#badChunks++;
        this.#log("chunk.bad", { peer: this.#peerId, server: base, index, error: err.message });
      }
      if (err instanceof ReceiveError) return err;
      if (req.timedOut) {
        return new ReceiveError(
          "timeout",
          `Cannot fetch ${what}: nothing received for ${req.timeoutMs} ms (after ${at.got} of ${expected} bytes)`,
          { index, cause: err },
        );
      }
      if (cancelled()) return new Cancelled();
      return new ReceiveError(
        "server-gone",
        `Cannot fetch ${what}: the server went away after ${at.got} of ${expected} bytes (${
          (err as Error).message
        })`,
        { index, cause: err },
      );
    };
    try {
      const res = await fetch(url, { signal: req.ctl.signal });
      req.last = performance.now();
      if (res.status !== 200) {
        const body = (await res.text().catch(() => "")).slice(0, 300).trim();
        throw new ReceiveError(
          `http-${res.status}`,
          `Cannot fetch ${what}: HTTP ${res.status}${body ? ` ${body}` : ""}`,
          { index },
        );
      }
      const image = res.headers.get("x-cascade-image");
      if (image !== null && image !== this.imageId) {
        await res.body?.cancel();
        throw new ReceiveError(
          "wrong-image",
          `Cannot fetch ${what}: the server serves image "${image}", not "${this.imageId}"`,
          { index },
        );
      }
      const cl = res.headers.get("content-length");
      if (cl !== null && Number(cl) !== expected) {
        await res.body?.cancel();
        throw new ReceiveError(
          "bad-chunk",
          `Cannot verify ${what}: the server sends ${cl} bytes, expected ${expected}`,
          { index },
        );
      }
      if (!res.body) {
        throw new ReceiveError("bad-chunk", `Cannot verify ${what}: empty body`, { index });
      }
      const reader = res.body.getReader({ mode: "byob" });
      const got = await this.#readChunk(reader, buffer, index, expected, what, req, at);
      // The body must end here: a longer one is not this chunk.
      const tail = await reader.read(new Uint8Array(1));
      if (!tail.done) {
        await reader.cancel();
        throw new ReceiveError(
          "bad-chunk",
          `Cannot verify ${what}: the server sends more than ${expected} bytes`,
          { index },
        );
      }
      return got;
    } catch (err) {
      throw fromError(err);
    } finally {
      if (at.got > 0) this.#attempted[index] = 1;
    }
  }

  /** Read exactly `expected` bytes of chunk `index` into `buffer` (byob: the bytes land in
   * place), hashing SHA-256 as they arrive. `at.got` says how far it came, for errors. */
  async #readChunk(
    reader: ReadableStreamBYOBReader,
    buffer: ArrayBuffer,
    index: number,
    expected: number,
    what: string,
    req: Request,
    at: { got: number },
  ): Promise<{ buffer: ArrayBuffer; sha256: string }> {
    const refetch = this.#attempted[index] === 1;
    const sha = createHash("sha256");
    let buf = buffer;
    while (at.got < expected) {
      const { value, done }: ReadableStreamReadResult<Uint8Array> = await reader.read(
        new Uint8Array(buf, at.got, expected - at.got),
      );
      if (done) {
        throw new ReceiveError(
          "server-gone",
          `Cannot fetch ${what}: the response ended after ${at.got} of ${expected} bytes`,
          { index },
        );
      }
      buf = value.buffer as ArrayBuffer;
      sha.update(value);
      at.got += value.byteLength;
      this.#countBytes(value.byteLength, refetch);
      req.last = performance.now();
    }
    return { buffer: buf, sha256: sha.digest("hex") };
  }

  /** Split the missing chunks (in order) into runs with only zero chunks between members. */
  #runs(queue: number[]): number[][] {
    const chunks = this.manifest.chunks;
    const runs: number[][] = [];
    let prev = -1;
    for (const i of queue) {
      let joins = prev >= 0;
      for (let k = prev + 1; joins && k < i; k++) if (!chunks[k].zero) joins = false;
      if (joins) runs.at(-1)!.push(i);
      else runs.push([i]);
      prev = i;
    }
    return runs;
  }

  /** GET /v1/stream for one run of missing chunks: read exactly one chunk's bytes at a time
   * into a pooled buffer, hashing SHA-256 as they arrive, and hand each whole chunk to
   * `onChunk` (verify and write) at once. */
  async #receiveRun(
    base: string,
    run: number[],
    pool: BufferPool,
    req: Request,
    cancelled: () => boolean,
    onChunk: (index: number, got: { buffer: ArrayBuffer; sha256: string }) => void,
  ): Promise<void> {
    const m = this.manifest;
    const url = `${base}/v1/stream?from=${run[0]}&to=${run[run.length - 1] + 1}`;
    let index = run[0];
    let expected = chunkLength(m, index);
    const at = { got: 0 };
    const what = () => `chunk ${index} of "${m.name}" from ${url}`;
    let res: Response | undefined;
    let reader: ReadableStreamBYOBReader | undefined;
    try {
      res = await fetch(url, { signal: req.ctl.signal });
      req.last = performance.now();
      if (res.status !== 200) {
        const body = (await res.text().catch(() => "")).slice(0, 300).trim();
        throw new ReceiveError(
          `http-${res.status}`,
          `Cannot fetch ${url}: HTTP ${res.status}${body ? ` ${body}` : ""}`,
        );
      }
      const image = res.headers.get("x-cascade-image");
      if (image !== null && image !== this.imageId) {
        throw new ReceiveError(
          "wrong-image",
          `Cannot fetch ${url}: the server serves image "${image}", not "${this.imageId}"`,
        );
      }
      if (!res.body) throw new ReceiveError("server-gone", `Cannot fetch ${url}: empty body`);
      reader = res.body.getReader({ mode: "byob" });
      for (index of run) {
        expected = chunkLength(m, index);
        at.got = 0;
        const buf = await pool.acquire();
        req.last = performance.now(); // Waiting for a buffer is not the server stalling.
        let handed = false;
        try {
          if (cancelled()) throw new Cancelled();
          onChunk(index, await this.#readChunk(reader, buf, index, expected, what(), req, at));
          handed = true;
        } finally {
          if (at.got > 0) this.#attempted[index] = 1;
          // Not handed on: back to the pool (a byob read may have taken it, so a fresh one).
          if (!handed) pool.release(null);
        }
      }
    } catch (err) {
      if (err instanceof ReceiveError || err instanceof Cancelled) throw err;
      if (req.timedOut) {
        throw new ReceiveError(
          "timeout",
          `Cannot fetch ${what()}: nothing received for ${req.timeoutMs} ms (after ${at.got} of ${expected} bytes)`,
          { index, cause: err },
        );
      }
      if (cancelled()) throw new Cancelled();
      throw new ReceiveError(
        "server-gone",
        `Cannot fetch ${what()}: the server went away after ${at.got} of ${expected} bytes (${
          (err as Error).message
        })`,
        { index, cause: err },
      );
    } finally {
      if (reader) await reader.cancel().catch(() => {});
      else await res?.body?.cancel().catch(() => {});
    }
  }

  /** Check MD5 (on the worker) and SHA-256, then write. Resolves to the buffer to reuse. */
  async #verifyAndWrite(
    base: string,
    index: number,
    got: { buffer: ArrayBuffer; sha256: string },
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
    this.#markHeld(index);
    this.#queueBehind(index);
    this.#progress();
    return buffer;
  }
}
