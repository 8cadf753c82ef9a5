// The client's data path: fetch chunks over HTTP, verify each (SHA-256; MD5 as well only when
// asked) before a byte of it is written, write it at its offset, mark it held. A Receiver is also
// the relay's ChunkSource: a request for a chunk not held yet waits until it is.
//
// This file keeps the state and the order of things (zero fill, resume, one transfer at a
// time, read-back); its parts have one job each: transfer.ts (one server's chunks, verified
// and written), chunk_fetch.ts (the HTTP client), fetch_plan.ts (runs and buffers, pure),
// held_chunks.ts (what is held, who waits), buffer_pool.ts, rate_meter.ts, read_back.ts
// (verify-behind and the checks on the target).
//
// Speed (see scripts/bench_client.ts): several requests in flight; bytes are read with a BYOB
// reader straight into pooled buffers and SHA-256 runs as they arrive. MD5 (the costlier hash,
// ~3 x SHA-256 here: SHA-NI) is off by default: a chunk whose SHA-256 matches has the right
// bytes, so MD5 adds no check, only CPU (MD5 + SHA-256 ~460 MB/s a core, SHA-256 alone ~1,800)
// and, on a relay, the worker's round trip before each chunk's last byte may go on. The manifest
// keeps MD5 (the seed's, and `cascade verify --md5`); verifyMd5 checks it here too, on a Worker.
import {
  chunkLength,
  chunkOffset,
  imageIdOf,
  type Manifest,
  parseManifest,
  type StoredChunk,
} from "../../imagetools/mod.ts";
import { type Logger, type Progress, silentLogger } from "../../imagetools/kit/mod.ts";
import { dataBase, frameOf } from "../protocol/mod.ts";
import type { FetchLike } from "./chunk_fetch.ts";
import {
  checkChunkIndex,
  type ChunkSource,
  DEFAULT_WAIT_MS,
  type ReadOptions,
} from "./chunk_source.ts";
import { HeldChunks } from "./held_chunks.ts";
import { HeldReads, type HeldReadStats } from "./held_read.ts";
import { KeptFrames } from "./kept_frames.ts";
import { type ChunkFeed, LiveChunks } from "./live_chunks.ts";
import { RateMeter } from "./rate_meter.ts";
import { badOnTarget, VerifyBehind } from "./read_back.ts";
import { ReceiveError } from "./receive_error.ts";
import type { TargetDisk } from "./target_disk.ts";
import { type PackStats, ServePacker } from "./serve_pack.ts";
import { type FetchOptions, Transfer, type TransferHost } from "./transfer.ts";
import { TargetScan } from "./target_scan.ts";

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
  /** Check MD5 as well as SHA-256 (default false: SHA-256 alone decides; see the header). */
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
  /** Memory for the zstd bytes of chunks received compressed, which a relay sends on as they
   * came (default RELAY_KEEP_BYTES; the oldest go first, and are then compressed again as they
   * are read: serve_pack.ts). */
  relayKeepBytes?: number;
  /** Compresses the chunks served from the target (default: one worker of this receiver's,
   * started at the first such chunk; close() ends it). */
  packer?: ServePacker;
}

export const DEFAULT_INFLIGHT = 4;
/** A relay's downstream fetches right behind it: this much compressed image (some 300 MiB of
 * disk at the usual 2-3 x) covers even a slow one, in the memory of any lab PC. */
export const RELAY_KEEP_BYTES = 128 << 20;

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
  #live: LiveChunks;
  /** Chunks of which some bytes were received before (refetches count as waste). */
  #attempted: Uint8Array;
  #bytesReceived = 0;
  #bytesRefetched = 0;
  #badChunks = 0;
  #rate: RateMeter;
  #fetching: Promise<void> = Promise.resolve();
  #behind: VerifyBehind;
  #heldReads: HeldReads;
  /** The target was created empty, so unwritten zero chunks already read as zeros. */
  #zerosOnDisk: boolean;
  #host: TransferHost;
  /** The check of what a used target holds (startScan), while it runs or after it failed. */
  #scan?: TargetScan;
  /** Chunks received zstd-compressed, as they came (kept_frames.ts). */
  #kept: KeptFrames;
  #packer: ServePacker;
  #ownPacker: boolean;

  constructor(opts: ReceiverOptions) {
    this.manifestBytes = opts.manifestBytes;
    this.manifest = parseManifest(new TextDecoder().decode(opts.manifestBytes));
    this.imageId = imageIdOf(opts.manifestBytes);
    this.target = opts.target;
    this.#inflight = opts.inflight ?? DEFAULT_INFLIGHT;
    if (!Number.isInteger(this.#inflight) || this.#inflight < 1) {
      throw new RangeError(`Invalid inflight ${opts.inflight}: must be a whole number >= 1`);
    }
    this.#verifyMd5 = opts.verifyMd5 ?? false;
    this.#md5Threads = opts.md5Threads ?? 1;
    this.#maxBad = opts.maxBadChunks ?? 3;
    this.#log = opts.log ?? silentLogger;
    this.#onProgress = opts.onProgress;
    this.#peerId = opts.peerId;
    this.#fetch = opts.fetch;
    this.#rate = new RateMeter(opts.now);
    this.#held = new HeldChunks(this.manifest);
    this.#live = new LiveChunks((i) => this.#held.poke(i));
    this.#attempted = new Uint8Array(this.manifest.chunks.length);
    this.#behind = new VerifyBehind(this.target, this.manifest, (i) => this.#held.holds(i));
    this.#heldReads = new HeldReads(this.target, this.manifest, (i) => this.#behind.bytesOf(i));
    this.#zerosOnDisk = this.target.fresh === true;
    this.#kept = new KeptFrames(opts.relayKeepBytes ?? RELAY_KEEP_BYTES);
    this.#ownPacker = opts.packer === undefined;
    this.#packer = opts.packer ?? new ServePacker();
    this.#host = this.#transferHost();
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

  /** `into`: memory of the chunk's length to copy the bytes into (else a new buffer). */
  async read(index: number, opts: ReadOptions = {}, into?: Uint8Array): Promise<Uint8Array> {
    checkChunkIndex(this.manifest, index);
    const length = chunkLength(this.manifest, index);
    if (this.manifest.chunks[index].zero) return new Uint8Array(length);
    await this.#held.waitFor(index, opts.waitMs ?? DEFAULT_WAIT_MS, opts.signal);
    const put = (b: Uint8Array) => into?.length === length ? (into.set(b), into) : b.slice();
    return await this.#heldReads.with(index, put);
  }

  /** A held chunk as it came when it came zstd-compressed (sent on without compressing
   * again), else read from the target: compressed again if the manifest stores it so
   * (serve_pack.ts), and kept like a received one. */
  async readStored(index: number, opts: ReadOptions = {}): Promise<StoredChunk> {
    checkChunkIndex(this.manifest, index);
    if (!this.manifest.chunks[index].zero) {
      await this.#held.waitFor(index, opts.waitMs ?? DEFAULT_WAIT_MS, opts.signal);
    }
    const kept = this.#kept.get(index);
    if (kept) return { zstd: true, bytes: kept };
    const s = await this.#packer.fromDisk(this.manifest, index, (to) => this.read(index, opts, to));
    // Not if read-back unmarked it meanwhile (the bytes read may be the bad ones).
    if (s.zstd && this.#held.holds(index)) this.#kept.keep(index, s.bytes);
    return s;
  }

  /** A framed request's chunk as soon as it is coming: held (as readStored gives it), or the
   * feed of its bytes as they arrive (cut-through); waits like read() for either. */
  async readLive(index: number, opts: ReadOptions = {}): Promise<StoredChunk | ChunkFeed> {
    return await this.#feedOnceHeld(index, opts) ?? await this.readStored(index, opts);
  }

  /** readLive's answer as a framed reply sends it (head and bytes in one buffer): a held raw
   * chunk is framed straight from the bytes held_read.ts lends (no fresh buffer, one copy). */
  async readFrame(index: number, opts: ReadOptions = {}): Promise<Uint8Array | ChunkFeed> {
    const feed = await this.#feedOnceHeld(index, opts);
    if (feed) return feed;
    const entry = this.manifest.chunks[index];
    if (entry.zero || entry.zstd !== undefined) {
      const s = await this.readStored(index, opts);
      return frameOf(s.zstd, s.bytes);
    }
    return await this.#heldReads.with(index, (bytes) => frameOf(false, bytes));
  }

  /** Wait until chunk `index` is held or coming; its feed if it is coming. */
  async #feedOnceHeld(index: number, opts: ReadOptions): Promise<ChunkFeed | undefined> {
    checkChunkIndex(this.manifest, index);
    this.#live.enable(); // a relay: the chunks that begin from now on go on as they come
    const live = () => !this.#held.holds(index) && this.#live.has(index);
    if (!this.manifest.chunks[index].zero) {
      await this.#held.waitFor(index, opts.waitMs ?? DEFAULT_WAIT_MS, opts.signal, live);
    }
    return live() ? this.#live.get(index) : undefined;
  }

  /** Where the held chunks served came from (held_read.ts). */
  heldReadStats(): HeldReadStats {
    return this.#heldReads.stats();
  }

  /** End the workers that compress served chunks (the target is the caller's to close). */
  close(): void {
    if (this.#ownPacker) this.#packer.close();
  }

  /** What was compressed for serving (serve_pack.ts). */
  packStats(): PackStats {
    return this.#packer.stats();
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
    this.#kept.forget(index);
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
   * target (created empty, so already zeros) nothing needs writing, nor for a chunk the manifest
   * marks free (wholly in blocks no file system uses: a 256 GB disk with 30 GB used is not
   * written 226 GB of zeros; read-back skips those chunks too). */
  async fillZeros(): Promise<void> {
    // The scan may still be about to find them right on the disk.
    await this.#scan?.done;
    const m = this.manifest;
    let zeros: Uint8Array | undefined;
    for (let i = 0; i < m.chunks.length; i++) {
      if (!m.chunks[i].zero || this.#held.holds(i)) continue;
      if (!this.#zerosOnDisk && !m.chunks[i].free) {
        const length = chunkLength(m, i);
        if (!zeros || zeros.length !== length) zeros = new Uint8Array(length);
        try {
          await this.target.writeAt(chunkOffset(m, i), zeros);
        } catch (cause) {
          throw new ReceiveError(
            "write-failed",
            `Cannot write zero chunk ${i} of "${m.name}" to "${this.target.path}" at byte ${
              chunkOffset(m, i)
            }: ${(cause as Error).message}`,
            { index: i, cause },
          );
        }
      }
      this.#held.mark(i);
    }
    this.#progress();
  }

  /** Resume after a crash or reboot, or re-image a disk that holds an older image: check what
   * the target holds and mark the chunks that match the manifest held. Returns how many chunks
   * it marked. startScan does the same in the background. */
  async scanExisting(): Promise<number> {
    const before = this.#held.count;
    const scan = this.startScan();
    await scan.done;
    if (scan.failure !== undefined) throw scan.failure;
    return this.#held.count - before;
  }

  /**
   * Start checking what the target holds, in the background: each chunk that matches the
   * manifest (SHA-256, as verify-behind checks) is marked held as soon as it verifies, and
   * counts as read back.
   * Chunks the manifest marks free are not read (nothing on a disk needs to be there); zero
   * chunks are checked for zeros without hashing. fetchFrom fetches only chunks the scan has
   * judged missing, so it may start at once. A fresh target holds only zeros: its zero chunks
   * are marked without reading and nothing else is scanned.
   */
  startScan(): TargetScan {
    const m = this.manifest;
    const todo: number[] = [];
    for (let i = 0; i < m.chunks.length; i++) {
      if (this.#held.holds(i)) continue;
      if (m.chunks[i].free || (this.#zerosOnDisk && m.chunks[i].zero)) this.#held.mark(i);
      else if (!this.#zerosOnDisk) todo.push(i);
    }
    this.#scan?.stop();
    const scan = new TargetScan(this.#scanHost(), todo);
    this.#scan = scan;
    this.#progress();
    return scan;
  }

  #scanHost() {
    return {
      manifest: this.manifest,
      target: this.target,
      held: this.#held,
      checked: (i: number) => this.#behind.checked(i),
      progress: () => this.#progress(),
      log: this.#log,
      peerId: this.#peerId,
    };
  }

  /** Stop a scan still running (the client is done with the target). */
  async stopScan(): Promise<void> {
    this.#scan?.stop();
    await this.#scan?.done;
  }

  /** Read the whole target back and check every chunk against the manifest (SHA-256, and MD5
   * with verifyMd5), as the seed's client did before turning server. Bad chunks are unmarked and returned.
   * Chunks already read back since they were written (verify-behind) are skipped, once: a
   * later readBack reads everything again. */
  async readBack(opts: { progress?: Progress } = {}): Promise<number[]> {
    await this.#scan?.done;
    await this.#behind.settle();
    const all = this.#behind.takeUnchecked();
    this.#log("readback.left", { peer: this.#peerId, chunks: all.length });
    const bad = await this.#badOnTarget(all, opts.progress);
    for (const i of bad) this.#unmark(i);
    // Something wrote there after all: zeros must be written, not assumed.
    if (bad.length > 0) this.#zerosOnDisk = false;
    this.#log("readback.done", { peer: this.#peerId, bad: bad.length });
    this.#progress();
    return bad;
  }

  #badOnTarget(indices: number[], progress: Progress | undefined): Promise<number[]> {
    return badOnTarget(this.target, this.manifest, indices, { md5: this.#verifyMd5, progress });
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
      // A scan that failed (a disk read) is tried again for the chunks it did not judge.
      if (this.#scan?.failure !== undefined) {
        const left = this.#scan.pendingList();
        if (left.length > 0) {
          this.#scan = new TargetScan(this.#scanHost(), left);
        }
      }
      await new Transfer(this.#host).run(dataBase(serverUrl), opts);
      await this.fillZeros();
    } finally {
      // No read-behind left in flight once fetchFrom settles (the caller may close the target).
      await this.#behind.settle();
      resolve();
    }
  }

  #transferHost(): TransferHost {
    return {
      manifest: this.manifest,
      imageId: this.imageId,
      target: this.target,
      held: this.#held,
      live: this.#live,
      inflight: this.#inflight,
      maxBad: this.#maxBad,
      verifyMd5: this.#verifyMd5,
      md5Threads: this.#md5Threads,
      log: this.#log,
      peerId: this.#peerId,
      fetch: this.#fetch,
      bytesReceived: () => this.#bytesReceived,
      received: (index, n) => this.#countBytes(index, n),
      touched: (index) => this.#attempted[index] = 1,
      badChunk: () => this.#badChunks++,
      written: (index, stored, runs, verified) => {
        if (stored) this.#kept.keep(index, stored);
        this.#held.mark(index);
        this.#live.end(index);
        const lent = this.#behind.queue(index, runs, verified);
        this.#progress();
        return lent;
      },
      progress: () => this.#progress(),
      scan: () => this.#scan,
    };
  }
}
