// MD5 on a second thread. The client hashes each chunk twice (SHA-256 and MD5); MD5 is ~3x the
// cost of SHA-256 here, so it runs on a Worker while the main thread receives, runs SHA-256
// and writes: two cores instead of one. Buffers are transferred both ways (no copies).
import { createHash } from "node:crypto";
import { WorkerRpc } from "../kit/mod.ts";

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

export interface Md5Result {
  md5: string;
  /** The buffer handed in, back from the worker (the old handle is detached). */
  buffer: ArrayBuffer;
}

/** MD5 of the first `length` bytes of transferred buffers, on worker threads (or inline). */
export class Md5Hasher {
  #workers: WorkerRpc<Md5Result>[] = [];

  /** `threads` 0 hashes on the calling thread (a fallback, and a baseline for benchmarks). */
  constructor(threads = 1) {
    if (!Number.isInteger(threads) || threads < 0) {
      throw new RangeError(`Invalid MD5 thread count ${threads}: must be a whole number >= 0`);
    }
    for (let i = 0; i < threads; i++) {
      try {
        this.#workers.push(new WorkerRpc<Md5Result>(WORKER_SOURCE, "hash with MD5"));
      } catch {
        break; // No workers here (a locked-down runtime): hash inline instead.
      }
    }
  }

  get threads(): number {
    return this.#workers.length;
  }

  async md5(buffer: ArrayBuffer, length: number): Promise<Md5Result> {
    if (this.#workers.length === 0) {
      const md5 = createHash("md5").update(new Uint8Array(buffer, 0, length)).digest("hex");
      return { md5, buffer };
    }
    const w = this.#workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    const { md5, buffer: back } = await w.request({ buffer, length }, [buffer]);
    return { md5, buffer: back };
  }

  close(): void {
    for (const w of this.#workers) w.close();
  }
}
