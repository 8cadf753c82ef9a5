// Servers the clients report: one that `after` different clients report failed leaves the
// server queue for the rest of the run (a rogue or broken server is not handed out again and
// again). Different clients, so that one client (or one liar) cannot push a server out alone.
// Kept when the server leaves: coming back under the same id does not wipe its reports. The
// last server is never pushed out (the run must still finish): it goes once another is there.
//
// Below that threshold (a room of two honest PCs never makes three reporters) a client is not
// given a server it failed with again at once: only after a backoff that doubles with each of
// its failures there (retryAt), and only when no server it has not failed with is free. It
// waits for the backoff rather than take the server again, but never longer: a failed server
// that is the only source still serves in the end.

/** Distinct clients whose failure with a server makes it leave (default). */
export const DEFAULT_EJECT_AFTER = 3;
/** Seconds after a client's first failure with a server before it is offered that server
 * again; doubled with every failure after, up to RETRY_MOST. */
export const RETRY_FIRST = 2;
export const RETRY_MOST = 32;

export class FailureReports {
  readonly #by = new Map<string, Set<string>>();
  readonly #ejected = new Set<string>();
  /** client -> server -> that client's failures with that server, and the last one's time. */
  readonly #pairs = new Map<string, Map<string, { count: number; at: number }>>();
  constructor(readonly after: number = DEFAULT_EJECT_AFTER) {
    if (!Number.isInteger(after) || after < 1) {
      throw new RangeError(`Invalid ejectAfter "${after}": must be a whole number >= 1`);
    }
  }

  /** Client `client` failed with `server` at `at`; the clients that did so once they are
   * enough. */
  report(server: string, client: string, at: number): string[] | null {
    const mine = this.#pairs.get(client) ?? new Map<string, { count: number; at: number }>();
    mine.set(server, { count: (mine.get(server)?.count ?? 0) + 1, at });
    this.#pairs.set(client, mine);
    if (this.#ejected.has(server)) return null;
    const set = this.#by.get(server) ?? new Set<string>();
    set.add(client);
    this.#by.set(server, set);
    return set.size >= this.after ? [...set] : null;
  }

  eject(server: string) {
    this.#ejected.add(server);
    this.#by.delete(server);
  }

  /** When `client` may be given `server` again (its backoff), or null: it never failed there. */
  retryAt(client: string, server: string): number | null {
    const p = this.#pairs.get(client)?.get(server);
    if (!p) return null;
    return p.at + Math.min(RETRY_MOST, RETRY_FIRST * 2 ** (p.count - 1));
  }

  /** A peer that left for good forgets its failures as a client (bounds the pairs kept). */
  forget(client: string) {
    this.#pairs.delete(client);
  }

  all(): string[] {
    return [...this.#ejected];
  }

  ejected(server: string): boolean {
    return this.#ejected.has(server);
  }
}
