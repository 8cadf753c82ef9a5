// Limits on one control session, so that a stranger's socket costs little: it must say hello
// within a deadline, and may send at most so many messages a second (a token bucket). Honest
// peers send a progress report every 500 ms and a few messages per assignment: far below.

export interface ControlLimits {
  /** A session that has not sent its hello by then is closed (default 10 000 ms). */
  helloMs: number;
  /** Messages per second a session may keep up (default 20). */
  ratePerSecond: number;
  /** Messages it may send at once above that rate (default 60). */
  burst: number;
}

export const DEFAULT_CONTROL_LIMITS: ControlLimits = {
  helloMs: 10_000,
  ratePerSecond: 20,
  burst: 60,
};

/** A token bucket: `take()` is false once a session sent more than its rate allows. */
export class MessageBudget {
  #tokens: number;
  #at: number;
  constructor(
    private readonly limits: ControlLimits,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#tokens = limits.burst;
    this.#at = now();
  }

  take(): boolean {
    const t = this.now();
    const l = this.limits;
    this.#tokens = Math.min(l.burst, this.#tokens + ((t - this.#at) / 1000) * l.ratePerSecond);
    this.#at = t;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }

  /** The refusal a flooding session is closed with. */
  refusal(): string {
    return `Too many messages: at most ${this.limits.ratePerSecond} a second (bursts of ${this.limits.burst})`;
  }
}
