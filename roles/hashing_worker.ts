// MD5 on a second thread. The client hashes each chunk twice (SHA-256 and MD5); MD5 is ~3x the
// cost of SHA-256 here, so it runs on a Worker while the main thread receives, runs SHA-256
// and writes: two cores instead of one. Buffers are transferred both ways (no copies).
import { createHash } from "node:crypto";

// The worker's code travels as a string (a blob: URL) so it survives `deno bundle`/`compile`,
// where a second file beside this one would not exist.
const WORKER_SOURCE = `
import { createHash } from "node:crypto";
self.onmessage = (e) => {
  const { id, buffer, length } = e.data;
  let md5, error;
  try {
    md5 = createHash("md5").update(new Uint8Array(buffer, 0, length)).digest("hex");
  } catch (err) {
    error = String(err?.message ?? err);
  }
  self.postMessage({ id, buffer, md5, error }, [buffer]);
};
`;

let workerUrl: string | undefined;

export interface Md5Result {
  md5: string;
  /** The buffer handed in, back from the worker (the old handle is detached). */
  buffer: ArrayBuffer;
}

interface Pending {
  resolve: (r: Md5Result) => void;
  reject: (e: Error) => void;
}

/** MD5 of the first `length` bytes of transferred buffers, on worker threads (or inline). */
export class Md5Hasher {
  #workers: Worker[] = [];
  #load: number[] = [];
  #pending = new Map<number, Pending & { worker: number }>();
  #nextId = 0;
  #closed = false;

  /** `threads` 0 hashes on the calling thread (a fallback, and a baseline for benchmarks). */
  constructor(threads = 1) {
    if (!Number.isInteger(threads) || threads < 0) {
      throw new RangeError(`Invalid MD5 thread count ${threads}: must be a whole number >= 0`);
    }
    for (let i = 0; i < threads; i++) {
      let w: Worker;
      try {
        workerUrl ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
        w = new Worker(workerUrl, { type: "module" });
      } catch {
        break; // No workers here (a locked-down runtime): hash inline instead.
      }
      w.onmessage = (e: MessageEvent) => this.#settle(e.data);
      w.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.#failAll(new Error(`MD5 worker failed: ${e.message}`));
      };
      this.#workers.push(w);
      this.#load.push(0);
    }
  }

  get threads(): number {
    return this.#workers.length;
  }

  md5(buffer: ArrayBuffer, length: number): Promise<Md5Result> {
    if (this.#closed) return Promise.reject(new Error("Cannot hash: the MD5 hasher is closed"));
    if (this.#workers.length === 0) {
      const md5 = createHash("md5").update(new Uint8Array(buffer, 0, length)).digest("hex");
      return Promise.resolve({ md5, buffer });
    }
    let w = 0;
    for (let i = 1; i < this.#load.length; i++) if (this.#load[i] < this.#load[w]) w = i;
    const id = this.#nextId++;
    this.#load[w]++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, worker: w });
      this.#workers[w].postMessage({ id, buffer, length }, [buffer]);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#workers) w.terminate();
    this.#failAll(new Error("Cannot hash: the MD5 hasher was closed"));
  }

  #settle(m: { id: number; buffer: ArrayBuffer; md5?: string; error?: string }) {
    const p = this.#pending.get(m.id);
    if (!p) return;
    this.#pending.delete(m.id);
    this.#load[p.worker]--;
    if (m.error !== undefined) p.reject(new Error(`Cannot hash with MD5: ${m.error}`));
    else p.resolve({ md5: m.md5!, buffer: m.buffer });
  }

  #failAll(err: Error) {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of all) p.reject(err);
  }
}
