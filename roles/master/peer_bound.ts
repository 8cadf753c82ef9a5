// Bounding the master's peer records: a stranger that says hello under a new name each session
// must not leave a record behind for the whole run. When a client's session closes, its record
// is kept only if this run did something with it (keepRecord); the others move to a small
// departed list, so that a PC that reconnects at once under the same id resumes as before (its
// first hello time, failures and disk), and its name stays its own for a while. A hello that
// would add a record past the cap is refused (peersFull). Pure: no clock, no I/O.
import type { PeerRecord } from "./peer_record.ts";
import { MAX_BOOTING } from "./core_config.ts";

/** Records the master holds at most (booting placeholders included): 4 per boot request kept. */
export const MAX_PEERS = 4 * MAX_BOOTING;
/** Dropped records remembered for a quick reconnect. */
export const MAX_DEPARTED = 256;
/** Seconds between two log lines about hellos refused for a full table. */
export const FULL_LOG_SECONDS = 60;

/**
 * Is this record worth keeping once its session closed? What the master itself did or checked:
 * a proof (verified), a boot request bound to it (macBound), bytes it served (its clients say
 * so), a done or finishing step, an assignment that came to something (bytes or a failure
 * reported on it). And a PC whose own disk failed (state "failed"): the admin must see that one
 * on the dashboard. An assignment alone does not count: in classic mode a free server takes the
 * next client that says hello at once, so a stranger saying hello and going is assigned about
 * every other session (tests/hostile_peers_test.ts kept 64 of 64 so). What a hello says (`held`,
 * its disk) never counts. A stranger that plays along further (a report after its hello, a boot
 * request first) keeps its record, and meets the cap (maxPeers).
 */
export function keepRecord(p: PeerRecord): boolean {
  if (p.role !== "client") return true; // servers and fake servers: the server token guards
  const since = p.assignedAt;
  const cameTo = since !== undefined && (p.bytes > 0 || p.failures.some((f) => f.at >= since));
  return p.verified || p.macBound === true || cameTo || p.state === "failed" ||
    (p.served ?? 0) > 0 || p.doneAt !== undefined || p.finish !== undefined;
}

/** The refusal a hello gets when the table is full (the peer may try again later). */
export function peersFull(max: number): string {
  return `This master holds ${max} peer records already (maxPeers ${max}): try again later`;
}

/** Dropped records, least recently dropped first out; a reconnect takes its record back. */
export class Departed {
  readonly #max: number;
  readonly #byId = new Map<string, PeerRecord>();

  constructor(max = MAX_DEPARTED) {
    if (!Number.isSafeInteger(max) || max < 0) throw new RangeError(`Invalid max ${max}`);
    this.#max = max;
  }

  get size(): number {
    return this.#byId.size;
  }

  put(p: PeerRecord) {
    this.#byId.delete(p.id); // re-inserted: the newest goes last
    this.#byId.set(p.id, p);
    if (this.#byId.size > this.#max) this.#byId.delete(this.#byId.keys().next().value!);
  }

  get(id: string): PeerRecord | undefined {
    return this.#byId.get(id);
  }

  /** The record left under `id` by the same address and MAC (a record is taken over only so,
   * as hello.ts uniqueId says), removed from the list; else undefined and nothing changes. */
  take(id: string, address: string, mac: string | undefined): PeerRecord | undefined {
    const p = this.#byId.get(id);
    if (!p || p.address !== address || p.mac !== mac) return undefined;
    this.#byId.delete(id);
    return p;
  }
}

/** Hellos refused for a full table: counted all, logged at most once per FULL_LOG_SECONDS. */
export class FullRefusals {
  total = 0;
  #since = 0;
  #loggedAt = -Infinity;

  /** One more refusal at `now` (seconds): the count to log since the last line, or null. */
  refused(now: number): number | null {
    this.total++;
    this.#since++;
    if (now - this.#loggedAt < FULL_LOG_SECONDS) return null;
    this.#loggedAt = now;
    const n = this.#since;
    this.#since = 0;
    return n;
  }
}
