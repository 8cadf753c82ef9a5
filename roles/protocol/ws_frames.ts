// The server side of RFC 6455 framing, pure: a reader that takes a client's bytes as they come
// and gives whole messages, pings, pongs and the close, and the writer of the server's frames.
// The reader refuses a data frame whose header announces more than the message limit (or that
// would take a fragmented message past it) as soon as that header is in, before any of its
// payload: it never holds more than the limit plus one frame header (roles/master/control_ws.ts
// says why the master has its own).

export const OP_CONTINUATION = 0;
export const OP_TEXT = 1;
export const OP_BINARY = 2;
export const OP_CLOSE = 8;
export const OP_PING = 9;
export const OP_PONG = 10;

/** Close codes (RFC 6455 7.4.1). */
export const CLOSE_NORMAL = 1000;
export const CLOSE_PROTOCOL = 1002;
export const CLOSE_NO_STATUS = 1005;
export const CLOSE_BAD_DATA = 1007;
export const CLOSE_TOO_BIG = 1009;

export type FrameEvent =
  /** A whole message: text (valid UTF-8) or binary. */
  | { type: "message"; data: string | Uint8Array }
  | { type: "ping"; data: Uint8Array }
  | { type: "pong"; data: Uint8Array }
  /** The client's close (code 1005 when it gave none). */
  | { type: "close"; code: number; reason: string }
  /** The client broke the protocol or a limit: close with `code`; nothing more is read. */
  | { type: "fail"; code: number; reason: string };

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Reads a client's frames. `push` the bytes as they arrive; each call returns the events those
 * bytes completed. After a "fail" or a "close" event it takes nothing more. */
export class FrameReader {
  readonly #max: number;
  // The frame header being read (at most 14 bytes), and how many of it are in.
  readonly #head = new Uint8Array(14);
  #headIn = 0;
  // The frame whose payload is being read.
  #opcode = 0;
  #fin = false;
  readonly #mask = new Uint8Array(4);
  #left = 0; // payload bytes of this frame still to come
  #at = 0; // payload bytes of this frame already in (the mask's phase)
  #inPayload = false;
  // The message being put together (data frames), and a control frame's payload. The message's
  // buffer is kept from one message to the next (a control session sends thousands of small
  // ones: a fresh buffer for each was garbage the master's one thread paid for); `#open` says
  // whether a message is under way.
  #message: Uint8Array | null = null;
  #open = false;
  #messageLength = 0;
  #messageOpcode = 0;
  #control: Uint8Array | null = null;
  #controlLength = 0;
  #done = false;

  /** `maxMessage`: the most payload bytes one message may have (fragments together). */
  constructor(maxMessage: number) {
    this.#max = maxMessage;
  }

  /** Bytes it holds: the message buffer (at most the limit), a control frame (125), a header. */
  get held(): number {
    return (this.#message?.length ?? 0) + (this.#control?.length ?? 0) + this.#head.length;
  }

  /** Has it ended (a fail or the client's close)? */
  get done(): boolean {
    return this.#done;
  }

  push(bytes: Uint8Array): FrameEvent[] {
    const out: FrameEvent[] = [];
    let i = 0;
    while (i < bytes.length && !this.#done) {
      if (!this.#inPayload) {
        i = this.#readHead(bytes, i, out);
        continue;
      }
      const n = Math.min(this.#left, bytes.length - i);
      const into = this.#opcode >= OP_CLOSE ? this.#control! : this.#message!;
      const base = this.#opcode >= OP_CLOSE ? this.#controlLength : this.#messageLength;
      const mask = this.#mask;
      for (let k = 0; k < n; k++) into[base + k] = bytes[i + k] ^ mask[(this.#at + k) & 3];
      if (this.#opcode >= OP_CLOSE) this.#controlLength += n;
      else this.#messageLength += n;
      this.#at += n;
      this.#left -= n;
      i += n;
      if (this.#left === 0) this.#endFrame(out);
    }
    return out;
  }

  /** Take header bytes from `bytes` at `i`; on a whole header, check it. Returns the new i. */
  #readHead(bytes: Uint8Array, i: number, out: FrameEvent[]): number {
    const h = this.#head;
    while (i < bytes.length && this.#headIn < this.#needed()) h[this.#headIn++] = bytes[i++];
    if (this.#headIn < this.#needed()) return i;
    const fin = (h[0] & 0x80) !== 0;
    const opcode = h[0] & 0x0f;
    const len7 = h[1] & 0x7f;
    let length = len7;
    if (len7 === 126) length = (h[2] << 8) | h[3];
    else if (len7 === 127) {
      // 2^53 and over cannot be a length here; over the limit either way.
      length = h[2] & 0x80 ? Infinity : Number(
        new DataView(h.buffer, 2, 8).getBigUint64(0),
      );
    }
    const maskAt = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
    this.#headIn = 0;
    const fail = this.#check(h[0], h[1], fin, opcode, length);
    if (fail) {
      this.#fail(out, fail[0], fail[1]);
      return i;
    }
    for (let k = 0; k < 4; k++) this.#mask[k] = h[maskAt + k];
    this.#fin = fin;
    this.#opcode = opcode;
    this.#left = length;
    this.#at = 0;
    if (opcode >= OP_CLOSE) {
      this.#control = new Uint8Array(length);
      this.#controlLength = 0;
    } else {
      if (opcode !== OP_CONTINUATION) {
        this.#messageOpcode = opcode;
        this.#messageLength = 0;
        this.#open = true;
      }
      // Room for this frame: the message so far and its announced length (within the limit),
      // grown by doubling (many small fragments do not copy the message each time).
      const needed = this.#messageLength + length;
      const had = this.#message;
      if (!had || had.length < needed) {
        const room = Math.min(this.#max, Math.max(needed, 2 * (had?.length ?? 0), 256));
        const grown = new Uint8Array(room);
        if (had) grown.set(had.subarray(0, this.#messageLength));
        this.#message = grown;
      }
    }
    this.#inPayload = true;
    if (length === 0) this.#endFrame(out);
    return i;
  }

  /** How many header bytes the frame being read has: 2, then as its length and mask say. */
  #needed(): number {
    if (this.#headIn < 2) return 2;
    const len7 = this.#head[1] & 0x7f;
    // A frame without the mask bit is refused at its 2 bytes (checked there), so count it 2.
    if ((this.#head[1] & 0x80) === 0) return 2;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + 4;
  }

  #check(
    b0: number,
    b1: number,
    fin: boolean,
    opcode: number,
    length: number,
  ): [number, string] | null {
    if (b0 & 0x70) return [CLOSE_PROTOCOL, "Reserved bits set (no extension was agreed)"];
    if ((b1 & 0x80) === 0) return [CLOSE_PROTOCOL, "A client's frame must be masked"];
    if (opcode >= OP_CLOSE) {
      if (opcode > OP_PONG) return [CLOSE_PROTOCOL, `Unknown opcode ${opcode}`];
      if (!fin) return [CLOSE_PROTOCOL, "A control frame cannot be fragmented"];
      if (length > 125) return [CLOSE_PROTOCOL, `Control frame of ${length} bytes (at most 125)`];
      return null;
    }
    if (opcode > OP_BINARY) return [CLOSE_PROTOCOL, `Unknown opcode ${opcode}`];
    const open = this.#open;
    if (opcode === OP_CONTINUATION && !open) {
      return [CLOSE_PROTOCOL, "Continuation frame without a message to continue"];
    }
    if (opcode !== OP_CONTINUATION && open) {
      return [CLOSE_PROTOCOL, "New message before the fragmented one ended"];
    }
    const total = (opcode === OP_CONTINUATION ? this.#messageLength : 0) + length;
    if (total > this.#max) {
      return [
        CLOSE_TOO_BIG,
        Number.isFinite(total)
          ? `Message of ${total} bytes or more is larger than ${this.#max} bytes`
          : `Message larger than ${this.#max} bytes`,
      ];
    }
    return null;
  }

  #endFrame(out: FrameEvent[]) {
    this.#inPayload = false;
    if (this.#opcode >= OP_CLOSE) {
      const data = this.#control!.subarray(0, this.#controlLength);
      this.#control = null;
      this.#controlLength = 0;
      if (this.#opcode === OP_PING) out.push({ type: "ping", data });
      else if (this.#opcode === OP_PONG) out.push({ type: "pong", data });
      else this.#closeFrame(data, out);
      return;
    }
    if (!this.#fin) return;
    // A copy for binary (the buffer is the next message's); text is decoded out of it.
    const data = this.#message!.subarray(0, this.#messageLength);
    const opcode = this.#messageOpcode;
    this.#open = false;
    this.#messageLength = 0;
    if (opcode === OP_BINARY) {
      out.push({ type: "message", data: data.slice() });
      return;
    }
    let text: string;
    try {
      text = fatalUtf8.decode(data);
    } catch {
      this.#fail(out, CLOSE_BAD_DATA, "Text message is not UTF-8");
      return;
    }
    out.push({ type: "message", data: text });
  }

  #closeFrame(data: Uint8Array, out: FrameEvent[]) {
    if (data.length === 0) {
      this.#done = true;
      out.push({ type: "close", code: CLOSE_NO_STATUS, reason: "" });
      return;
    }
    if (data.length === 1) return this.#fail(out, CLOSE_PROTOCOL, "Close frame of 1 byte");
    const code = (data[0] << 8) | data[1];
    if (!validCloseCode(code)) return this.#fail(out, CLOSE_PROTOCOL, `Close code ${code}`);
    let reason: string;
    try {
      reason = fatalUtf8.decode(data.subarray(2));
    } catch {
      return this.#fail(out, CLOSE_BAD_DATA, "Close reason is not UTF-8");
    }
    this.#done = true;
    out.push({ type: "close", code, reason });
  }

  #fail(out: FrameEvent[], code: number, reason: string) {
    this.#done = true;
    this.#message = null;
    this.#open = false;
    this.#messageLength = 0;
    this.#control = null;
    this.#controlLength = 0;
    out.push({ type: "fail", code, reason });
  }
}

/** A close code a peer may send (RFC 6455 7.4). */
export function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/** A server's frame (unmasked, whole): opcode and payload. */
export function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const headLength = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = new Uint8Array(headLength + n);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = n;
  else if (n < 65536) {
    out[1] = 126;
    out[2] = n >> 8;
    out[3] = n & 255;
  } else {
    out[1] = 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
  }
  out.set(payload, headLength);
  return out;
}

/** A close frame's payload: the code, then the reason cut to fit 125 bytes. */
export function closePayload(code: number, reason: string): Uint8Array {
  let bytes = new TextEncoder().encode(reason);
  if (bytes.length > 123) {
    // Cut at a character boundary.
    let end = 123;
    while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
    bytes = bytes.subarray(0, end);
  }
  const out = new Uint8Array(2 + bytes.length);
  out[0] = code >> 8;
  out[1] = code & 255;
  out.set(bytes, 2);
  return out;
}
