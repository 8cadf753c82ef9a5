// The zstd bytes of chunks a relay received compressed, kept as they came so it sends them on
// without compressing again: the oldest go first past `limit` bytes (a Map keeps insertion
// order), and are then compressed again as they are read (serve_pack.ts).
export class KeptFrames {
  #kept = new Map<number, Uint8Array>();
  #bytes = 0;

  constructor(private readonly limit: number) {}

  get(index: number): Uint8Array | undefined {
    return this.#kept.get(index);
  }

  keep(index: number, stored: Uint8Array): void {
    if (stored.length > this.limit || this.#kept.has(index)) return;
    this.#kept.set(index, stored);
    this.#bytes += stored.length;
    for (const [i, bytes] of this.#kept) {
      if (this.#bytes <= this.limit) break;
      this.#kept.delete(i);
      this.#bytes -= bytes.length;
    }
  }

  forget(index: number): void {
    const bytes = this.#kept.get(index);
    if (!bytes) return;
    this.#kept.delete(index);
    this.#bytes -= bytes.length;
  }
}
