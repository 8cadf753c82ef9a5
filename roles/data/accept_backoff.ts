// The wait of an accept loop that failed (EMFILE: no descriptor left; the process goes on):
// 100 ms, doubling to 2 s while it keeps failing, back to 100 ms once it accepts again. One
// log line per failure (accept.failed) and one when it works again (accept.again).
import type { Logger } from "../../imagetools/kit/mod.ts";

const FIRST_MS = 100;
const MOST_MS = 2000;

export class AcceptBackoff {
  /** Failures so far. */
  restarts = 0;
  #ms = FIRST_MS;
  #failing = false;

  constructor(readonly name: string | undefined, readonly log: Logger) {}

  /** Accepting (or listening) failed: log it, and resolve once it is time to try again. */
  failed(err: unknown): Promise<void> {
    this.restarts++;
    this.#failing = true;
    const retryMs = this.#ms;
    this.log("accept.failed", { server: this.name, error: (err as Error)?.message, retryMs });
    this.#ms = Math.min(MOST_MS, this.#ms * 2);
    return new Promise((r) => setTimeout(r, retryMs));
  }

  /** It works again on `port` (logged once after failures). */
  ok(port: number) {
    if (!this.#failing) return;
    this.#failing = false;
    this.#ms = FIRST_MS;
    this.log("accept.again", { server: this.name, port, restarts: this.restarts });
  }
}
