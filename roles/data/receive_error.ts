// Why a receive stopped: the one error a Receiver's caller (the client role) recovers from.

/** "server-gone" | "bad-chunk" | "timeout" | "too-slow" | "http-<status>" | "write-failed" | "read-failed" |
 *  "wrong-image" */
export type ReceiveReason = string;

/** Why fetchFrom stopped. Chunks verified before the failure stay held. */
export class ReceiveError extends Error {
  override name = "ReceiveError";
  readonly reason: ReceiveReason;
  readonly index?: number;
  /** What the server itself said (an error body): for this PC's own log only, never sent on,
   * since whatever a server answers would otherwise reach the master's public status. */
  readonly remote?: string;
  constructor(
    reason: ReceiveReason,
    message: string,
    opts: { index?: number; cause?: unknown; remote?: string } = {},
  ) {
    super(message, { cause: opts.cause });
    this.reason = reason;
    if (opts.index !== undefined) this.index = opts.index;
    if (opts.remote) this.remote = opts.remote;
  }
}

/** A chunk that failed verification (the server sent wrong bytes; the others go on). */
export function isBadChunk(err: unknown): err is ReceiveError {
  return err instanceof ReceiveError && err.reason === "bad-chunk";
}

/** The target disk failed a write or a read: the PC's own failure, never its server's. */
export function isDiskFailure(err: unknown): err is ReceiveError {
  return err instanceof ReceiveError &&
    (err.reason === "write-failed" || err.reason === "read-failed");
}
