// The target scan on threads of its own: each worker opens the disk itself, reads the chunks it
// was given (pread, blocking: the thread has nothing else to do) and checks their SHA-256, and
// posts the verdicts in small batches. On the main thread the same scan shared the event loop
// with the deltas it feeds (their reads, digests, verification and writes): a 4 GiB re-image's
// scan of 1,557 used chunks took 7.3 s there, 1.2 s alone (idle 2-core machine, bench:reimage).
//
// WHY two workers where there are two cores and the disk does not seek: one worker's SHA-256
// (~1.1 GB/s with its reads) is slower than an NVMe disk, and the scan is a re-image's critical
// path. They take turns of SCAN_RUN chunks, so each reads long runs in disk order.
import { ReceiveError } from "./receive_error.ts";
import { chunkLength, chunkOffset, type Manifest, zeroChunkHashes } from "../../imagetools/mod.ts";

const WORKER_SOURCE = `
import fs from "node:fs";
import { createHash } from "node:crypto";
const allZero = (b) => {
  const w = new Int32Array(b.buffer, b.byteOffset, b.length >> 2);
  for (let k = 0; k < w.length; k++) if (w[k] !== 0) return false;
  for (let k = w.length << 2; k < b.length; k++) if (b[k] !== 0) return false;
  return true;
};
self.onmessage = (e) => {
  const { path, chunks, stop, batch } = e.data;
  const flag = new Int32Array(stop);
  let fd = -1;
  let out = [];
  let at = 0;
  try {
    fd = fs.openSync(path, "r");
    const st = fs.fstatSync(fd);
    // Where a file ends (a device's size was checked before): not where this worker's read was.
    const end = (at) => (st.isFile() ? Math.min(at, st.size) : at);
    const buf = new Uint8Array(Math.max(0, ...chunks.map((c) => c.length)) + 4);
    for (const c of chunks) {
      if (Atomics.load(flag, 0) !== 0) break;
      const view = buf.subarray(0, c.length);
      at = c.offset;
      let got = 0;
      while (got < c.length) {
        const n = fs.readSync(fd, view, got, c.length - got, c.offset + got);
        if (n === 0) break;
        got += n;
      }
      if (got !== c.length) {
        self.postMessage({ verdicts: out, short: end(c.offset + got) });
        return;
      }
      // Zeros on the disk (a blank disk, never written) are judged without hashing them.
      const zeros = allZero(view);
      const ok = zeros
        ? c.zero
        : !c.zero && createHash("sha256").update(view).digest("hex") === c.sha256;
      out.push(c.index, ok ? 1 : 0, !ok && !c.zero && zeros ? 1 : 0);
      if (out.length >= 3 * batch) {
        self.postMessage({ verdicts: out });
        out = [];
      }
    }
    self.postMessage({ verdicts: out, done: true });
  } catch (err) {
    self.postMessage({ verdicts: out, error: String(err?.message ?? err), at });
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
};
`;

let url: string | undefined;

/** Chunks one worker reads in a row before the next worker's turn. */
export const SCAN_RUN = 16;

/** Workers for a scan: two where this machine has two cores or more, else one. */
export function scanWorkers(): number {
  return Math.min(2, navigator.hardwareConcurrency || 1);
}

export interface WorkerScanOptions {
  /** Told each chunk's verdict (as verifyChunks' onChunk): `ok`, and for a bad chunk the
   * manifest does not mark zero, whether the disk held only zeros there. */
  onChunk: (index: number, ok: boolean, zeros: boolean) => void;
  /** Stops the scan: it rejects with the signal's reason once the workers' reads ended. */
  signal?: AbortSignal;
  /** Verdicts per message (default 8). */
  batch?: number;
  /** Worker threads (default scanWorkers(); one for a disk that seeks). */
  workers?: number;
  /** Chunks a worker reads in a row (default SCAN_RUN). */
  turn?: number;
}

/** Start a worker thread, or undefined where this runtime has none. */
function startWorker(): Worker | undefined {
  try {
    url ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    return new Worker(url, { type: "module" });
  } catch {
    return undefined;
  }
}

interface ScanChunk {
  index: number;
  offset: number;
  length: number;
  zero: boolean;
  sha256: string;
}

/** `chunks` dealt to `n` workers in turns of `turn` (pure; the parts keep disk order). */
export function dealRuns<T>(chunks: readonly T[], n: number, turn = SCAN_RUN): T[][] {
  const parts: T[][] = Array.from({ length: Math.max(1, n) }, () => []);
  for (let k = 0; k < chunks.length; k++) {
    parts[Math.floor(k / turn) % parts.length].push(chunks[k]);
  }
  return parts.filter((p) => p.length > 0);
}

/**
 * Check the chunks `indices` of the file or device at `path` against the manifest (SHA-256; a
 * zero chunk that reads as zeros matches without hashing; free chunks are skipped), on worker
 * threads. Resolves false without reading when no worker can be started (the caller scans
 * another way), true when every chunk has its verdict; rejects with a "read-failed"
 * ReceiveError when a read fails or the disk ends early (the other workers are stopped).
 */
export function scanInWorker(
  path: string,
  m: Manifest,
  indices: readonly number[],
  o: WorkerScanOptions,
): Promise<boolean> {
  const chunks: ScanChunk[] = indices.filter((i) => !m.chunks[i].free).map((i) => ({
    index: i,
    offset: chunkOffset(m, i),
    length: chunkLength(m, i),
    // Zero bytes, flagged or not (a manifest of the first format has no zero flags).
    zero: m.chunks[i].zero || m.chunks[i].sha256 === zeroChunkHashes(chunkLength(m, i)).sha256,
    sha256: m.chunks[i].sha256,
  }));
  if (chunks.length === 0) return Promise.resolve(true);
  // No more workers than turns to take; the chunks are dealt among those the runtime started.
  const turn = o.turn ?? SCAN_RUN;
  const wanted = Math.min(o.workers ?? scanWorkers(), Math.ceil(chunks.length / turn));
  const workers: Worker[] = [];
  for (let k = 0; k < wanted; k++) {
    const w = startWorker();
    if (!w) break;
    workers.push(w);
  }
  if (workers.length === 0) return Promise.resolve(false);
  const parts = dealRuns(chunks, workers.length, turn);
  const stop = new SharedArrayBuffer(4);
  const { promise, resolve, reject } = Promise.withResolvers<boolean>();
  const onAbort = () => Atomics.store(new Int32Array(stop), 0, 1);
  o.signal?.addEventListener("abort", onAbort, { once: true });
  let running = workers.length;
  let ended = false;
  const end = (err?: unknown) => {
    if (ended) return;
    ended = true;
    o.signal?.removeEventListener("abort", onAbort);
    for (const w of workers) w.terminate();
    if (err !== undefined) reject(err);
    else if (o.signal?.aborted) reject(o.signal.reason);
    else resolve(true);
  };
  const failed = (message: string, offset?: number) =>
    new ReceiveError(
      "read-failed",
      `Cannot read "${m.name}" back from "${path}"${
        offset === undefined ? "" : ` at byte ${offset}`
      }: ${message}`,
    );
  workers.forEach((worker, k) => {
    worker.onmessage = (e: MessageEvent) => {
      if (ended) return;
      const d = e.data as {
        verdicts: number[];
        done?: boolean;
        error?: string;
        at?: number;
        short?: number;
      };
      const v = d.verdicts;
      try {
        for (let j = 0; j < v.length; j += 3) o.onChunk(v[j], v[j + 1] === 1, v[j + 2] === 1);
      } catch (err) {
        return end(err);
      }
      if (d.error !== undefined) end(failed(d.error, d.at));
      else if (d.short !== undefined) {
        end(failed(`it ended at byte ${d.short}, expected ${m.size}`));
      } else if (d.done && --running === 0) end();
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      end(failed(`the scan's worker failed: ${e.message}`));
    };
    worker.postMessage({ path, chunks: parts[k], stop, batch: o.batch ?? 8 });
  });
  return promise;
}

/** Whether the block device at `path` says it seeks (/sys's rotational flag, its own or, for a
 * partition, its disk's): two workers' turns would cost a spinning disk a seek each. A file, or
 * a device /sys says nothing of, does not. */
export function diskSeeks(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    if (!st.isBlockDevice || st.rdev === null) return false;
    const major = (st.rdev >> 8) & 0xfff;
    const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    for (const q of ["queue", "../queue"]) {
      try {
        return Deno.readTextFileSync(`/sys/dev/block/${major}:${minor}/${q}/rotational`)
          .trim() === "1";
      } catch { /* a partition: its disk's queue */ }
    }
  } catch { /* no stat, no /sys: assume it does not seek */ }
  return false;
}
