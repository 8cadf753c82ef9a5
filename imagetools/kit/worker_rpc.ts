// One worker thread spoken to by request and reply: each request gets an id, the worker answers
// { id, ...reply } or { id, error }, in any order.
//
// The worker's code travels as a string (a blob: URL), so a module that starts one still works
// after `deno bundle` or `deno compile`, where a second file beside it would not exist.

const urls = new Map<string, string>();

export class WorkerRpc<Reply extends object> {
  #worker: Worker;
  #pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  #nextId = 0;
  #closed = false;

  /** `what` names the worker in errors ("hash", "slice hash"). */
  constructor(source: string, private readonly what: string) {
    let url = urls.get(source);
    if (!url) {
      url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
      urls.set(source, url);
    }
    this.#worker = new Worker(url, { type: "module" });
    this.#worker.onmessage = (e: MessageEvent<{ id: number; error?: string } & Reply>) => {
      const p = this.#pending.get(e.data.id);
      if (!p) return;
      this.#pending.delete(e.data.id);
      if (e.data.error !== undefined) p.reject(new Error(`Cannot ${what}: ${e.data.error}`));
      else p.resolve(e.data);
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#failAll(new Error(`The ${what} worker failed: ${e.message}`));
    };
  }

  /** Requests not answered yet. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Post `req` (moving the `transfer` buffers to the worker) and wait for its reply. */
  request(req: object, transfer: Transferable[] = []): Promise<Reply> {
    if (this.#closed) return Promise.reject(new Error(`Cannot ${this.what}: the worker is closed`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...req, id }, transfer);
    });
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.terminate();
    this.#failAll(new Error(`Cannot ${this.what}: the worker was closed`));
  }

  #failAll(err: Error) {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of all) p.reject(err);
  }
}
