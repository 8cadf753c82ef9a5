// What a stranger may hold of a process, counted in slots: the master's front door weighs each
// connection by the descriptors it holds (a control session 1, a relayed HTTP connection 4),
// a chunk server counts its requests in flight. Caps per address and in total, the total
// below this process's real descriptor limit, and a share of it kept for addresses that hold
// little (an honest PC: one session, a request now and then), so that a few flooding
// addresses cannot refuse every new PC.

export interface ServeLimits {
  /** Slots one address may hold at once (default 64). */
  perAddress: number;
  /** Slots in all (default: the descriptor limit less a reserve, at most MAX_TOTAL). */
  total: number;
}

/** Why a slot was refused, as /metrics labels it (a fixed set). */
export type Refusal = "address" | "total";

/** What the process holds besides its connections: stdio, the event loop, listeners, the
 * history's database, the prover's chunk file, Deno's caches (an idle master: 28). */
export const RESERVED_MIN = 64;
/** Slots at most, whatever the limit: bounds memory (a relayed connection keeps 64 KiB). */
export const MAX_TOTAL = 16384;

/** The soft limit on open files of this process (Linux /proc), or null where unknown. */
export function openFileLimit(): number | null {
  try {
    const text = Deno.readTextFileSync("/proc/self/limits");
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    if (!m) return null;
    return m[1] === "unlimited" ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/** The total cap for a descriptor limit: the limit less max(RESERVED_MIN, 1/16 of it). */
export function totalFor(fds: number): number {
  return Math.max(8, Math.min(MAX_TOTAL, fds - Math.max(RESERVED_MIN, Math.floor(fds / 16))));
}

/** Limits below this process's descriptor limit (Deno raises its soft limit to the hard one). */
export function defaultLimits(given: Partial<ServeLimits> = {}): ServeLimits {
  const total = given.total ?? totalFor(openFileLimit() ?? 4096);
  const perAddress = given.perAddress ?? Math.min(64, total);
  for (const [k, v] of Object.entries({ perAddress, total })) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`Invalid connection cap ${k} "${v}": must be a whole number >= 1`);
    }
  }
  return { perAddress, total };
}

/** Counts slots held per address; refuses past the caps. */
export class SlotCounter {
  readonly #byAddress = new Map<string, number>();
  #total = 0;
  /** Refusals so far, by the cap that was full. */
  readonly refused: Record<Refusal, number> = { address: 0, total: 0 };
  /** Past this many slots in all, only an address holding at most `light` is let in. */
  readonly #kept: number;
  readonly #light: number;

  constructor(readonly limits: ServeLimits) {
    this.#kept = limits.total - Math.floor(limits.total / 4);
    this.#light = Math.floor(limits.perAddress / 2);
  }

  get total(): number {
    return this.#total;
  }

  /** Slots `address` holds now. */
  held(address: string): number {
    return this.#byAddress.get(address) ?? 0;
  }

  /** Why `weight` more slots for `address` would be refused, or null if they fit. */
  check(address: string, weight = 1): Refusal | null {
    const after = this.held(address) + weight;
    if (after > this.limits.perAddress) return "address";
    const total = this.#total + weight;
    if (total > this.limits.total) return "total";
    // The last quarter is kept for addresses that hold little.
    if (total > this.#kept && after > this.#light) return "total";
    return null;
  }

  /** Take `weight` slots for `address`; null when refused (counted). */
  take(address: string, weight = 1): Slot | null {
    const why = this.check(address, weight);
    if (why) {
      this.refused[why]++;
      return null;
    }
    this.#add(address, weight);
    let held = weight;
    const slot = {
      shrink: (less: number) => {
        const n = Math.min(less, held);
        this.#add(address, -n);
        held -= n;
      },
      release: () => {
        if (held === 0) return;
        this.#add(address, -held);
        held = 0;
      },
    };
    return slot;
  }

  /** Why `address` was refused, for a 503's body. */
  refusal(address: string): string {
    return this.held(address) >= this.limits.perAddress
      ? `Too many requests at once from ${address} (at most ${this.limits.perAddress}): try again later`
      : `Too many requests at once (at most ${this.limits.total}): try again later`;
  }

  #add(address: string, n: number) {
    this.#total += n;
    const left = this.held(address) + n;
    if (left > 0) this.#byAddress.set(address, left);
    else this.#byAddress.delete(address);
  }
}

/** Slots held: some may be given back early (`shrink`), the rest at once (`release`, once). */
export interface Slot {
  shrink(less: number): void;
  release(): void;
}
