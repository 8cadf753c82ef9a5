// What a used target already holds, checked in the background: a PC that holds an older image
// (or half of this one, after a crash) joins and receives while its disk is read and hashed,
// and each chunk that matches the manifest (SHA-256) counts as held (and as read back) the
// moment it verifies. The transfer fetches only chunks the scan has judged missing; a chunk whose bytes
// on the disk are an older version (not all zeros) is fetched by sub-chunk delta (delta.ts).
// The scan never writes, so a crash in the middle of it loses nothing.
//
// A blank disk (a new PC's, or one wiped) holds nothing worth a scan: once the first BLANK_AFTER
// chunks with data it judged (a quarter of them in a small image) all read as zeros, the scan
// stops and every chunk left is fetched. Reading the rest would only compete with the writes for
// the disk (30 GB used: 30 GB read before the PC holds a byte more). Always safe: a chunk judged
// missing is fetched, at worst one the disk did hold.
import type { Manifest } from "../../imagetools/mod.ts";
import type { Logger } from "../../imagetools/kit/mod.ts";
import type { HeldChunks } from "./held_chunks.ts";
import { badOnTarget } from "./read_back.ts";
import { diskSeeks, scanInWorker, scanWorkers } from "./scan_worker.ts";
import type { TargetDisk } from "./target_disk.ts";

/** Chunks with data that must all read as zeros, from the scan's start, for a blank disk. */
export const BLANK_AFTER = 256;

export interface ScanHost {
  readonly manifest: Manifest;
  readonly target: TargetDisk;
  readonly held: HeldChunks;
  /** Chunk `index` was found good on the target: it counts as read back. */
  checked(index: number): void;
  /** Something was marked held (progress to report). */
  progress(): void;
  readonly log: Logger;
  readonly peerId?: string;
}

export class TargetScan {
  /** 1: not judged yet. */
  readonly #pending: Uint8Array;
  /** 1: judged bad, and the disk holds something other than zeros there (an older version). */
  readonly #older: Uint8Array;
  #left = 0;
  #marked = 0;
  #failure: unknown;
  #ended = false;
  /** Chunks with data judged so far that read as zeros, all of them; -1 once one did not. */
  #blankRun = 0;
  readonly #blankAfter: number;
  #wake: (() => void)[] = [];
  readonly #stop = new AbortController();
  /** Settles (never rejects) once every chunk asked has its verdict, or the scan failed. */
  readonly done: Promise<void>;

  constructor(private readonly host: ScanHost, indices: readonly number[]) {
    const n = host.manifest.chunks.length;
    this.#pending = new Uint8Array(n);
    this.#older = new Uint8Array(n);
    for (const i of indices) {
      if (!this.#pending[i]) this.#left++;
      this.#pending[i] = 1;
    }
    const data = host.manifest.chunks.filter((c) => !c.zero).length;
    this.#blankAfter = Math.max(1, Math.min(BLANK_AFTER, Math.ceil(data / 4)));
    this.done = this.#run([...indices]);
  }

  async #run(indices: number[]): Promise<void> {
    const h = this.host;
    const started = performance.now();
    try {
      const onChunk = (i: number, ok: boolean, zeros: boolean) => this.#verdict(i, ok, zeros);
      const signal = this.#stop.signal;
      // On threads of their own where the target is a file or device they can open:
      // the scan is a re-image's critical path, and on this thread it waited behind the deltas.
      const path = h.target.sharedPath;
      const workers = path !== undefined && diskSeeks(path) ? 1 : scanWorkers();
      const inWorker = path !== undefined &&
        await scanInWorker(path, h.manifest, indices, { onChunk, signal, batch: 8, workers });
      if (!inWorker) {
        await badOnTarget(h.target, h.manifest, indices, {
          // SHA-256 alone (node:crypto, ~3 x the speed of MD5 and SHA-256 in lanes): the scan
          // reads the whole used disk, and its time is most of a re-image's. A chunk it finds
          // good counts as read back, as verify-behind's chunks do after the same check.
          md5: false,
          signal,
          // Verdicts per 8 chunks (one group of SIMD lanes): the transfer waits for them.
          batch: 8,
          onChunk,
        });
      }
    } catch (err) {
      if (!this.#blank) { // the blank disk's stop is not a failure
        this.#failure = err;
        h.log("scan.failed", { peer: h.peerId, error: (err as Error).message, left: this.#left });
      }
    }
    this.#ended = true;
    h.log("scan.done", {
      peer: h.peerId,
      marked: this.#marked,
      held: h.held.count,
      seconds: ((performance.now() - started) / 1000).toFixed(3),
    });
    this.#notify();
  }

  #verdict(index: number, ok: boolean, zeros: boolean) {
    if (!this.#pending[index]) return;
    this.#pending[index] = 0;
    this.#left--;
    if (this.#blankRun >= 0 && !this.host.manifest.chunks[index].zero) {
      this.#blankRun = !ok && zeros ? this.#blankRun + 1 : -1;
      if (this.#blankRun >= this.#blankAfter) return this.#blankDisk();
    }
    if (ok) {
      this.host.checked(index);
      if (this.host.held.mark(index)) this.#marked++;
      this.host.progress();
    } else if (!zeros) this.#older[index] = 1;
    this.#notify();
  }

  /** The scan stopped on a blank disk. */
  get #blank(): boolean {
    return this.#blankRun >= this.#blankAfter;
  }

  /** Every chunk still without a verdict is missing: stop reading the disk. */
  #blankDisk() {
    const left = this.#left;
    this.#pending.fill(0);
    this.#left = 0;
    this.host.log("scan.blank", { peer: this.host.peerId, after: this.#blankRun, left });
    this.#stop.abort(new Error("the disk is blank"));
    this.#notify();
  }

  #notify() {
    const wake = this.#wake;
    this.#wake = [];
    for (const w of wake) w();
  }

  /** Chunk `index` has no verdict yet: it must not be fetched (it may be on the disk). */
  pending(index: number): boolean {
    return this.#pending[index] === 1;
  }

  /** The disk holds another version of chunk `index` (not zeros): worth a sub-chunk fetch. */
  older(index: number): boolean {
    return this.#older[index] === 1;
  }

  /** Fetch chunk `index` whole next time (a delta of it did not verify). */
  forgetOlder(index: number): void {
    this.#older[index] = 0;
  }

  /** Still reading: more verdicts will come. */
  get running(): boolean {
    return !this.#ended;
  }

  /** Why the scan stopped before judging every chunk (a disk read failed), if it did. */
  get failure(): unknown {
    return this.#failure;
  }

  /** Chunks the scan found good and marked held. */
  get marked(): number {
    return this.#marked;
  }

  /** The chunks still without a verdict (after a failure: what a new scan must judge). */
  pendingList(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.#pending.length; i++) if (this.#pending[i]) out.push(i);
    return out;
  }

  /** Resolves at the next verdict, or at once when the scan has ended. */
  changed(): Promise<void> {
    if (this.#ended) return Promise.resolve();
    return new Promise((resolve) => this.#wake.push(resolve));
  }

  /** Stop reading (the client is done with the disk); `done` settles soon after. */
  stop(): void {
    this.#stop.abort(new Error("the scan was stopped"));
  }
}
