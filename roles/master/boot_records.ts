// Netboot requests the master remembers: which MAC asked for its boot script from which
// address, so that a client's hello can be bound to the boot it came from. Bounded (any host
// can ask for a boot script with any MAC): the oldest record goes first; found by MAC or by
// address through maps, never a scan. Pure.

export interface BootRecord {
  mac: string;
  address: string;
  at: number;
}

export class BootRecords {
  readonly #max: number;
  readonly #byMac = new Map<string, BootRecord>();
  readonly #byAddress = new Map<string, BootRecord>();

  constructor(max = 4096) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`Invalid max ${max}`);
    this.#max = max;
  }

  get size(): number {
    return this.#byMac.size;
  }

  /** A boot request from `mac` at `address`; returns the other MACs it made the records
   * forget (the one this address booted before, the oldest past the bound), whose booting
   * placeholders go too: else one host asking with ever new MACs grows them without end. */
  record(mac: string, address: string, at: number): string[] {
    const forgotten: string[] = [];
    this.forget(mac);
    const old = this.#byAddress.get(address);
    if (old) {
      this.forget(old.mac); // one address, one PC: the newest boot wins
      forgotten.push(old.mac);
    }
    const rec = { mac, address, at };
    this.#byMac.set(mac, rec);
    this.#byAddress.set(address, rec);
    if (this.#byMac.size > this.#max) {
      const oldest = this.#byMac.keys().next().value!;
      this.forget(oldest);
      forgotten.push(oldest);
    }
    return forgotten;
  }

  byMac(mac: string): BootRecord | undefined {
    return this.#byMac.get(mac);
  }

  byAddress(address: string): BootRecord | undefined {
    return this.#byAddress.get(address);
  }

  forget(mac: string) {
    const rec = this.#byMac.get(mac);
    if (!rec) return;
    this.#byMac.delete(mac);
    if (this.#byAddress.get(rec.address) === rec) this.#byAddress.delete(rec.address);
  }
}
