// A relay's chunks in flight (cut-through): the bytes of each chunk it is receiving, kept as
// they arrive, so its chunk server sends them on before the chunk is whole. Waiting for whole
// and verified cost one chunk's wire time per hop (88 ms for 1 MiB at 100 Mbit/s: 0.97 s down
// a chain of 12). The chunk's last byte goes only once this relay has verified it, and a chunk
// that fails here (bad hashes, its upstream gone mid-chunk) cuts every response sending it: a
// downstream never gets a whole response of bad bytes, and it verifies what it gets before it
// writes a byte anyway.

/** A chunk as it arrives, as one response reads it: its frame (zstd or raw, `length` bytes as
 * stored) and its bytes. */
export interface ChunkFeed {
  readonly index: number;
  readonly zstd: boolean;
  /** Bytes as sent: the zstd frame's length, or the chunk's. */
  readonly length: number;
  /** The bytes from `from` on that may go now (a view: bytes once appended never change, so
   * no copy per piece sent on): waits until there are some (the last one only once verified);
   * null once all `length` are out. Throws when the chunk failed here or `signal` aborts. A
   * view stays the chunk's until `releasePiece` says it was written: only then may the buffer
   * under it carry another chunk. */
  next(from: number, signal?: AbortSignal): Promise<Uint8Array | null>;
  /** This reader asks no more (also once next() gave null or threw; again is a no-op). */
  close(): void;
}

/** The chunk failed at this relay after its first bytes went on: the response must be cut. */
export class ChunkFeedFailed extends Error {
  override name = "ChunkFeedFailed";
}

/** The chunk each view handed out by a feed is lent from, until releasePiece. */
const lent = new WeakMap<Uint8Array, LiveChunk>();

/** A view from a feed was written out whole (its bytes copied to the socket): the buffer under
 * it may carry another chunk once no reader or view of this one is left. Any other bytes are
 * ignored. Only a writer that is done with the bytes when its write resolves may call this
 * (direct_http.ts); a view that is never released only keeps its buffer from being reused. */
export function releasePiece(view: Uint8Array) {
  const chunk = lent.get(view);
  if (!chunk) return;
  lent.delete(view);
  chunk.unlend();
}

/** Where the buffers of the chunks in flight come from: a fresh 1 MiB buffer per chunk was the
 * top function of every relaying client's profile (5.5-12 % of its busy time, BENCHMARKS.md),
 * a reused one costs a fifth (0.06 against 0.31 ms a chunk). */
class ChunkBuffers {
  readonly #free: ArrayBuffer[] = [];
  /** The largest frame seen: every new buffer holds one, so any frame fits any buffer kept. */
  #size = 0;

  take(length: number): ArrayBuffer {
    this.#size = Math.max(this.#size, length);
    for (;;) {
      const b = this.#free.pop();
      if (!b) return new ArrayBuffer(this.#size);
      if (b.byteLength >= length) return b;
    }
  }

  give(b: ArrayBuffer) {
    if (this.#free.length < KEPT_BUFFERS) this.#free.push(b);
  }

  kept(): number {
    return this.#free.length;
  }
}
/** The least a piece sent on before its chunk is whole: a sixteenth of the frame, at most 64
 * KiB (5 ms at 100 Mbit/s), so a hop adds about that once, while the writes and wake-ups per
 * chunk fall from hundreds to about 16. */
const MIN_PIECE = 64 * 1024;
const PIECES_PER_CHUNK = 16;
/** Free buffers kept: a relay receives up to its requests in flight at once (4-8); more would
 * only hold memory. */
const KEPT_BUFFERS = 8;

class LiveChunk {
  #buffer: ArrayBuffer | null;
  readonly #bytes: Uint8Array;
  #got = 0;
  #state: "receiving" | "verified" | "failed" = "receiving";
  #why = "";
  /** Readers waiting, each with the count of bytes got that is worth waking it for. */
  #wakers = new Map<() => void, number>();
  /** Readers that may still ask, views not yet written, and whether the chunk has left the live
   * set: the buffer goes back for another chunk only once all three are done. */
  #readers = 0;
  #lent = 0;
  #retired = false;
  readonly #minPiece: number;

  constructor(
    readonly index: number,
    readonly zstd: boolean,
    readonly length: number,
    private readonly buffers: ChunkBuffers,
  ) {
    this.#buffer = buffers.take(length);
    this.#bytes = new Uint8Array(this.#buffer, 0, length);
    this.#minPiece = Math.max(1, Math.min(MIN_PIECE, Math.floor(length / PIECES_PER_CHUNK)));
  }

  append(piece: Uint8Array) {
    if (this.#state !== "receiving") return;
    const n = Math.min(piece.length, this.length - this.#got);
    this.#bytes.set(piece.subarray(0, n), this.#got);
    this.#got += n;
    this.#wake(this.#got);
  }

  /** Verified (whole by then): the last byte may go. */
  verified() {
    if (this.#state !== "receiving" || this.#got !== this.length) return;
    this.#state = "verified";
    this.#wake();
  }

  /** Failed, unless verified already (bytes verified stay good whatever comes after). */
  fail(why: string) {
    if (this.#state !== "receiving") return;
    this.#state = "failed";
    this.#why = why;
    this.#wake();
  }

  /** No longer in the live set: no new reader comes. */
  retire() {
    this.#retired = true;
    this.#recycle();
  }

  /** A new reader of this chunk (a response sending it). */
  reader(): ChunkFeed {
    this.#readers++;
    let open = true;
    const close = () => {
      if (!open) return;
      open = false;
      this.#readers--;
      this.#recycle();
    };
    const next = async (from: number, signal?: AbortSignal) => {
      try {
        const piece = await this.#next(from, signal);
        if (!piece) close();
        return piece;
      } catch (err) {
        close();
        throw err;
      }
    };
    return { index: this.index, zstd: this.zstd, length: this.length, next, close };
  }

  unlend() {
    this.#lent--;
    this.#recycle();
  }

  #recycle() {
    if (!this.#retired || this.#readers > 0 || this.#lent > 0 || !this.#buffer) return;
    this.buffers.give(this.#buffer);
    this.#buffer = null;
  }

  /** Wake the readers waiting for `got` bytes or fewer (all: the state changed). */
  #wake(got = Infinity) {
    const w: (() => void)[] = [];
    for (const [f, at] of this.#wakers) if (at <= got) w.push(f);
    for (const f of w) f();
  }

  async #next(from: number, signal?: AbortSignal): Promise<Uint8Array | null> {
    for (;;) {
      signal?.throwIfAborted();
      if (this.#state === "failed") {
        throw new ChunkFeedFailed(`Chunk ${this.index} failed at this relay: ${this.#why}`);
      }
      if (from >= this.length) return null;
      // Not reached by a reader that is still open (it holds the buffer): a safeguard.
      if (!this.#buffer) throw new ChunkFeedFailed(`Chunk ${this.index} is no longer here`);
      const upTo = this.#state === "verified" ? this.length : Math.min(this.#got, this.length - 1);
      // A piece goes once it is #minPiece long, or is all the chunk can send now it is whole
      // (verified or not), not at every read of the upstream: 5.4 KiB a piece deep in a chain.
      const enough = upTo - from >= this.#minPiece || this.#got >= this.length;
      if (upTo > from && enough) {
        const view = this.#bytes.subarray(from, upTo);
        lent.set(view, this);
        this.#lent++;
        return view;
      }
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          this.#wakers.delete(wake);
          reject(signal!.reason);
        };
        const wake = () => {
          this.#wakers.delete(wake);
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        this.#wakers.set(wake, Math.min(from + this.#minPiece, this.length));
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    }
  }
}

/** The chunks a receiver is receiving now, by index. */
export class LiveChunks {
  readonly #live = new Map<number, LiveChunk>();
  readonly #buffers = new ChunkBuffers();
  /** Off until a downstream asks (enable): a PC nobody fetches from keeps no copies (bench:client's
   * receiver: +0.7 CPU s/GB and +45 MiB of peak RSS with them). */
  #on = false;

  /** `onBegin(index)`: a chunk's first bytes are coming (wake requests waiting for it). */
  constructor(private readonly onBegin: (index: number) => void) {}

  /** Keep the chunks in flight from now on (a downstream asked for one). */
  enable() {
    this.#on = true;
  }

  /** Chunk `index` begins to arrive as a frame of `length` bytes. */
  begin(index: number, zstd: boolean, length: number) {
    this.end(index, "received again");
    if (!this.#on) return;
    this.#live.set(index, new LiveChunk(index, zstd, length, this.#buffers));
    this.onBegin(index);
  }

  /** Is chunk `index` being received now? */
  has(index: number): boolean {
    return this.#live.has(index);
  }

  /** A reader of the chunk being received as `index` (close it when done), or undefined. */
  get(index: number): ChunkFeed | undefined {
    return this.#live.get(index)?.reader();
  }

  /** More bytes of chunk `index` (copied: the caller's buffer is reused). */
  piece(index: number, bytes: Uint8Array) {
    this.#live.get(index)?.append(bytes);
  }

  verified(index: number) {
    this.#live.get(index)?.verified();
  }

  /** Chunk `index` is held now, or failed here (`why`): responses sending it end, cut short
   * if it was not verified; new requests read it from the target or wait for it again. */
  end(index: number, why = "not held") {
    const chunk = this.#live.get(index);
    if (!chunk) return;
    chunk.fail(why);
    this.#live.delete(index);
    chunk.retire();
  }

  /** Chunks in flight now (tests: none may be left behind). */
  size(): number {
    return this.#live.size;
  }

  /** Free buffers kept for the next chunks (tests). */
  keptBuffers(): number {
    return this.#buffers.kept();
  }
}
