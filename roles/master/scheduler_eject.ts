// Servers the clients report: one that `after` different clients report failed leaves the
// server queue for the rest of the run (a rogue or broken server is not handed out again and
// again). Different clients, so that one client (or one liar) cannot push a server out alone.
// Kept when the server leaves: coming back under the same id does not wipe its reports. The
// last server is never pushed out (the run must still finish): it goes once another is there.

/** Distinct clients whose failure with a server makes it leave (default). */
export const DEFAULT_EJECT_AFTER = 3;

export class FailureReports {
  readonly #by = new Map<string, Set<string>>();
  readonly #ejected = new Set<string>();
  constructor(readonly after: number = DEFAULT_EJECT_AFTER) {
    if (!Number.isInteger(after) || after < 1) {
      throw new RangeError(`Invalid ejectAfter "${after}": must be a whole number >= 1`);
    }
  }

  /** Client `client` failed with `server`; the clients that did so once they are enough. */
  report(server: string, client: string): string[] | null {
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

  /** Did `client` report `server` failed (and it is still around)? */
  failedWith(client: string, server: string): boolean {
    return this.#by.get(server)?.has(client) ?? false;
  }

  all(): string[] {
    return [...this.#ejected];
  }

  ejected(server: string): boolean {
    return this.#ejected.has(server);
  }
}
