// The receiver's HTTP client: GET one chunk, or a stream of a run of chunks, from a chunk
// server into pooled buffers, hashing SHA-256 as the bytes arrive. `fetch` is injected (a
// Hono app's `request` serves in tests). One place maps what can go wrong onto ReceiveErrors:
// an HTTP status, another image, a short or long body, silence, a server gone.
//
// Bytes are read with a BYOB reader straight into the buffer (no copy), so a response body
// must be a byte stream, as every network fetch's is. Chunks come framed where the server
// frames (roles/protocol/data_plane.ts): a zstd frame is read whole, decompressed (bounded to
// the chunk's length) into the buffer and hashed; its compressed bytes are kept for relaying.
import { createHash } from "node:crypto";
import { chunkLength } from "../../imagetools/mod.ts";
import {
  chunkUrl,
  deltaUrl,
  FRAME_HEAD_BYTES,
  FRAMED_HEADER,
  IMAGE_HEADER,
  streamUrl,
} from "../protocol/mod.ts";
import type { BufferPool } from "./buffer_pool.ts";
import { decodeZstdFrame, frameFor } from "./chunk_frames.ts";
import { blockDigests } from "./delta.ts";
import { patchWith, readDeltaAnswer } from "./delta_read.ts";
import { ReceiveError } from "./receive_error.ts";
import { chunkDeadlineMs, headDeadlineMs, type InFlight } from "./in_flight.ts";

export {
  chunkDeadlineMs,
  type ChunkPace,
  DEFAULT_PACE,
  type InFlight,
  newInFlight,
  watchIdle,
} from "./in_flight.ts";

export {
  type ChunkFetchOptions,
  FetchCancelled,
  type FetchLike,
  type Received,
} from "./fetch_types.ts";
import {
  type ChunkFetchOptions,
  FetchCancelled,
  type FetchLike,
  type Received,
} from "./fetch_types.ts";

/** How far a request came in its chunk: bytes, and whether its frame had begun (onFrame). */
interface At {
  got: number;
  begun: boolean;
}

export class ChunkFetch {
  readonly #o: ChunkFetchOptions;
  readonly #fetch: FetchLike;

  constructor(o: ChunkFetchOptions) {
    this.#o = o;
    this.#fetch = o.fetch ?? ((url, init) => fetch(url, init));
  }

  /** GET one chunk into `buffer`: exactly its length, or a ReceiveError saying what came. */
  async chunk(index: number, buffer: ArrayBuffer, req: InFlight): Promise<Received> {
    const m = this.#o.manifest;
    const url = chunkUrl(this.#o.base, index);
    const expected = chunkLength(m, index);
    const what = `chunk ${index} of "${m.name}" from ${url}`;
    const at: At = { got: 0, begun: false };
    try {
      const res = await this.#open(url, what, req, index);
      const inFrames = res.headers.get(FRAMED_HEADER) === "1";
      const cl = res.headers.get("content-length");
      if (!inFrames && cl !== null && Number(cl) !== expected) {
        await res.body?.cancel();
        throw new ReceiveError(
          "bad-chunk",
          `Cannot verify ${what}: the server sends ${cl} bytes, expected ${expected}`,
          { index },
        );
      }
      if (!res.body) {
        throw new ReceiveError("bad-chunk", `Cannot verify ${what}: empty body`, { index });
      }
      const reader = res.body.getReader({ mode: "byob" });
      if (!inFrames) this.#begin(index, false, expected, at);
      const got = inFrames
        ? await this.#readFrame(reader, buffer, index, expected, what, req, at)
        : await this.#read(reader, buffer, index, expected, what, req, at);
      // The body must end here: a longer one is not this chunk.
      const tail = await reader.read(new Uint8Array(1));
      if (!tail.done) {
        await reader.cancel();
        throw new ReceiveError(
          "bad-chunk",
          `Cannot verify ${what}: the server sends more than ${expected} bytes`,
          { index },
        );
      }
      return got;
    } catch (err) {
      const e = this.#failure(err, req, what, at.got, expected, index);
      if (at.begun) this.#o.onCut?.(index, e.message);
      throw e;
    } finally {
      if (at.got > 0) this.#o.onTouched?.(index);
    }
  }

  /** Chunk `index`'s frame begins (a relay may send it on from here). */
  #begin(index: number, zstd: boolean, length: number, at: At) {
    at.begun = true;
    this.#o.onFrame?.(index, zstd, length);
  }

  /** GET the stream of one run of missing chunks (planRuns): read exactly one chunk's bytes
   * at a time into a pooled buffer and hand each whole chunk to `onChunk` at once (verify and
   * write), so a chunk is on its way after one chunk time. */
  async run(
    run: readonly number[],
    pool: BufferPool,
    req: InFlight,
    onChunk: (index: number, got: Received) => void,
  ): Promise<void> {
    const m = this.#o.manifest;
    const url = streamUrl(this.#o.base, run[0], run[run.length - 1] + 1);
    let index = run[0];
    let expected = chunkLength(m, index);
    const at: At = { got: 0, begun: false };
    const what = () => `chunk ${index} of "${m.name}" from ${url}`;
    let res: Response | undefined;
    let reader: ReadableStreamBYOBReader | undefined;
    try {
      // Only a stream's head is timed: a single chunk's waits for a relay's chunk (waitMs).
      req.deadline = performance.now() + headDeadlineMs(req.pace);
      req.head = true;
      res = await this.#open(url, url, req);
      req.deadline = Infinity;
      req.head = false;
      if (!res.body) throw new ReceiveError("server-gone", `Cannot fetch ${url}: empty body`);
      const inFrames = res.headers.get(FRAMED_HEADER) === "1";
      reader = res.body.getReader({ mode: "byob" });
      for (index of run) {
        expected = chunkLength(m, index);
        at.got = 0;
        at.begun = false;
        const buf = await pool.acquire();
        req.last = performance.now(); // Waiting for a buffer is not the server stalling.
        let handed = false;
        try {
          if (this.#o.cancelled()) throw new FetchCancelled();
          if (!inFrames) this.#begin(index, false, expected, at);
          const got = inFrames
            ? await this.#readFrame(reader, buf, index, expected, what(), req, at)
            : await this.#read(reader, buf, index, expected, what(), req, at);
          onChunk(index, got);
          handed = true;
          at.begun = false; // handed on: its verification decides now
        } finally {
          if (at.got > 0) this.#o.onTouched?.(index);
          // Not handed on: back to the pool (a byob read may have taken it, so a fresh one).
          if (!handed) pool.release(null);
        }
      }
    } catch (err) {
      const e = this.#failure(err, req, what(), at.got, expected, index);
      if (at.begun) this.#o.onCut?.(index, e.message);
      throw e;
    } finally {
      if (reader) await reader.cancel().catch(() => {});
      else await res?.body?.cancel().catch(() => {});
    }
  }

  /** POST the block digests of this PC's own version of chunk `index` (its bytes in `buffer`)
   * and patch the blocks the server says differ into it, in place (delta.ts). Resolves to the
   * patched chunk and its SHA-256: verified by the caller like any chunk. */
  async delta(index: number, buffer: ArrayBuffer, req: InFlight): Promise<Received> {
    const m = this.#o.manifest;
    const url = deltaUrl(this.#o.base, index);
    const length = chunkLength(m, index);
    const what = `the delta of chunk ${index} of "${m.name}" from ${url}`;
    const at = { got: 0 };
    let reader: ReadableStreamBYOBReader | undefined;
    try {
      const digests = blockDigests(new Uint8Array(buffer, 0, length));
      const res = await this.#open(url, what, req, index, digests);
      if (!res.body) {
        throw new ReceiveError("bad-chunk", `Cannot verify ${what}: empty body`, { index });
      }
      reader = res.body.getReader({ mode: "byob" });
      const r = reader;
      const answer = await readDeltaAnswer(
        (view) => this.#fill(r, view, what, req, at, index),
        res.headers.get(FRAMED_HEADER) === "1",
        length,
        what,
        index,
      );
      const tail = await reader.read(new Uint8Array(1));
      if (!tail.done) {
        throw new ReceiveError("bad-chunk", `Cannot verify ${what}: the answer is too long`, {
          index,
        });
      }
      const blocks = patchWith(new Uint8Array(buffer, 0, length), answer, what, index);
      reader = undefined;
      const sha256 = createHash("sha256").update(new Uint8Array(buffer, 0, length)).digest("hex");
      return { buffer, sha256, patched: blocks };
    } catch (err) {
      throw this.#failure(err, req, what, at.got, length, index);
    } finally {
      if (reader) await reader.cancel().catch(() => {});
      if (at.got > 0) this.#o.onTouched?.(index);
    }
  }

  /** Read exactly `view`'s length into it (byob: the bytes land in place); resolves to the
   * buffer's new handle. Counts the bytes against the chunk in `at` for errors and tallies. */
  async #fill(
    reader: ReadableStreamBYOBReader,
    view: Uint8Array,
    what: string,
    req: InFlight,
    at: { got: number },
    index: number,
  ): Promise<ArrayBuffer> {
    // A byob read detaches the buffer (the view then reads as empty): keep where it was.
    let buf = view.buffer as ArrayBuffer;
    const { byteOffset, length } = view;
    let done = 0;
    while (done < length) {
      const r: ReadableStreamReadResult<Uint8Array> = await reader.read(
        new Uint8Array(buf, byteOffset + done, length - done),
      );
      if (r.done) {
        throw new ReceiveError(
          "server-gone",
          `Cannot fetch ${what}: the answer ended after ${at.got} bytes`,
        );
      }
      buf = r.value.buffer as ArrayBuffer;
      done += r.value.byteLength;
      at.got += r.value.byteLength;
      this.#o.onBytes?.(index, r.value.byteLength);
      req.last = performance.now();
    }
    return buf;
  }

  /** Send the request; answer only a 200 for our image (the status and the image header are
   * checked here for every kind of request). `subject` names the request in errors; `body`
   * makes it a POST. */
  async #open(
    url: string,
    subject: string,
    req: InFlight,
    index?: number,
    body?: Uint8Array<ArrayBuffer>,
  ): Promise<Response> {
    const opts = index === undefined ? {} : { index };
    const headers: Record<string, string> = this.#o.ticket
      ? { authorization: `Bearer ${this.#o.ticket}` }
      : {};
    if (body) headers["content-type"] = "application/octet-stream";
    headers[FRAMED_HEADER] = "1"; // chunks framed, and a delta's answer
    const res = await this.#fetch(
      url,
      body
        ? { signal: req.ctl.signal, headers, method: "POST", body }
        : { signal: req.ctl.signal, headers },
    );
    req.last = performance.now();
    if (res.status !== 200) {
      const body = (await res.text().catch(() => "")).slice(0, 300).trim();
      throw new ReceiveError(`http-${res.status}`, `Cannot fetch ${subject}: HTTP ${res.status}`, {
        ...opts,
        remote: body,
      });
    }
    const image = res.headers.get(IMAGE_HEADER);
    if (image !== null && image !== this.#o.imageId) {
      await res.body?.cancel();
      throw new ReceiveError(
        "wrong-image",
        `Cannot fetch ${subject}: the server serves image "${image}", not "${this.#o.imageId}"`,
        opts,
      );
    }
    return res;
  }

  /** What a failed request means: our own errors as they are, silence as a timeout, a fetch
   * already failed as FetchCancelled, anything else (reset, abort by the server) server-gone. */
  #failure(
    err: unknown,
    req: InFlight,
    what: string,
    got: number,
    expected: number,
    index: number,
  ): Error {
    if (err instanceof ReceiveError || err instanceof FetchCancelled) return err;
    if (req.slow && req.head) {
      return new ReceiveError(
        "too-slow",
        `Cannot fetch ${what}: no answer within ${headDeadlineMs(req.pace)} ms of the request`,
        { index, cause: err },
      );
    }
    if (req.slow) {
      return new ReceiveError(
        "too-slow",
        `Cannot fetch ${what}: not whole within ${
          Math.round(chunkDeadlineMs(req.pace, expected))
        } ms of its first byte (${got} of ${expected} bytes; minimum ${req.pace.minRate} bytes/s)`,
        { index, cause: err },
      );
    }
    if (req.timedOut) {
      return new ReceiveError(
        "timeout",
        `Cannot fetch ${what}: nothing received for ${req.timeoutMs} ms (after ${got} of ${expected} bytes)`,
        { index, cause: err },
      );
    }
    if (this.#o.cancelled()) return new FetchCancelled();
    return new ReceiveError(
      "server-gone",
      `Cannot fetch ${what}: the server went away after ${got} of ${expected} bytes (${
        (err as Error).message
      })`,
      { index, cause: err },
    );
  }

  /** Read one frame of chunk `index` (`expected` bytes once decoded) into `buffer`: its head,
   * then its bytes; a zstd frame is decompressed in place of them, keeping a copy as received.
   * A head that cannot be this chunk's ends the response (what follows cannot be found). */
  async #readFrame(
    reader: ReadableStreamBYOBReader,
    buffer: ArrayBuffer,
    index: number,
    expected: number,
    what: string,
    req: InFlight,
    at: At,
  ): Promise<Received> {
    let head = new Uint8Array(FRAME_HEAD_BYTES);
    for (let got = 0; got < FRAME_HEAD_BYTES;) {
      const { value, done }: ReadableStreamReadResult<Uint8Array> = await reader.read(
        new Uint8Array(head.buffer, got, FRAME_HEAD_BYTES - got),
      );
      if (done) {
        throw new ReceiveError(
          "server-gone",
          `Cannot fetch ${what}: the response ended ${got > 0 ? "inside" : "before"} its frame`,
          { index },
        );
      }
      head = new Uint8Array(value.buffer as ArrayBuffer);
      got += value.byteLength;
      req.last = performance.now();
    }
    const frame = frameFor(head, expected);
    if (typeof frame === "string") {
      throw new ReceiveError("bad-chunk", `Cannot verify ${what}: the server sends ${frame}`, {
        index,
      });
    }
    this.#begin(index, frame.zstd, frame.length, at);
    if (!frame.zstd) return await this.#read(reader, buffer, index, expected, what, req, at);
    const got = await this.#read(reader, buffer, index, frame.length, what, req, at, false);
    return decodeZstdFrame(got.buffer, frame.length, expected);
  }

  /** Read exactly `expected` bytes of chunk `index` into `buffer` (byob: the bytes land in
   * place), hashing SHA-256 as they arrive (unless `hash` is false: compressed bytes). `at.got`
   * says how far it came, for errors. */
  async #read(
    reader: ReadableStreamBYOBReader,
    buffer: ArrayBuffer,
    index: number,
    expected: number,
    what: string,
    req: InFlight,
    at: At,
    hash = true,
  ): Promise<Received> {
    const sha = hash ? createHash("sha256") : undefined;
    let buf = buffer;
    req.deadline = Infinity;
    while (at.got < expected) {
      const { value, done }: ReadableStreamReadResult<Uint8Array> = await reader.read(
        new Uint8Array(buf, at.got, expected - at.got),
      );
      if (done) {
        throw new ReceiveError(
          "server-gone",
          `Cannot fetch ${what}: the response ended after ${at.got} of ${expected} bytes`,
          { index },
        );
      }
      buf = value.buffer as ArrayBuffer;
      sha?.update(value);
      if (at.begun) this.#o.onPiece?.(index, value);
      // The clock of the minimum rate starts at the chunk's first byte: before it, a relay may
      // wait (bounded by its own wait and the idle timer) for a chunk it does not hold yet.
      if (at.got === 0) req.deadline = performance.now() + chunkDeadlineMs(req.pace, expected);
      at.got += value.byteLength;
      this.#o.onBytes?.(index, value.byteLength);
      req.last = performance.now();
    }
    req.deadline = Infinity;
    return { buffer: buf, sha256: sha?.digest("hex") ?? "" };
  }
}
