import assert from "node:assert/strict";
import {
  closePayload,
  encodeFrame,
  type FrameEvent,
  FrameReader,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
} from "./ws_frames.ts";

/** A client's frame: masked, any length field (`announce` overrides the real length). */
function clientFrame(
  opcode: number,
  payload: Uint8Array | string,
  o: { fin?: boolean; masked?: boolean; rsv?: number; announce?: number } = {},
): Uint8Array {
  const data = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const n = o.announce ?? data.length;
  const len = n < 126 ? [n] : n < 65536 ? [126, n >> 8, n & 255] : [
    127,
    ...Array.from({ length: 8 }, (_, i) => Math.floor(n / 2 ** (8 * (7 - i))) & 255),
  ];
  const masked = o.masked ?? true;
  const mask = [0x37, 0xfa, 0x21, 0x3d];
  const head = [
    ((o.fin ?? true) ? 0x80 : 0) | (o.rsv ?? 0) | opcode,
    len[0] | (masked ? 0x80 : 0),
    ...len.slice(1),
    ...(masked ? mask : []),
  ];
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  for (let i = 0; i < data.length; i++) out[head.length + i] = data[i] ^ (masked ? mask[i & 3] : 0);
  return out;
}

const join = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
};

/** Push `bytes` one at a time (the slowest a socket can deliver). */
function byteByByte(r: FrameReader, bytes: Uint8Array): FrameEvent[] {
  const out: FrameEvent[] = [];
  for (let i = 0; i < bytes.length; i++) out.push(...r.push(bytes.subarray(i, i + 1)));
  return out;
}

Deno.test("FrameReader: text and binary messages, whole or a byte at a time", () => {
  const bytes = join(
    clientFrame(OP_TEXT, '{"type":"hello","name":"pc-é"}'),
    clientFrame(OP_BINARY, new Uint8Array([0, 1, 2, 255])),
    clientFrame(OP_TEXT, ""),
    clientFrame(OP_TEXT, "x".repeat(300)),
  );
  const want: FrameEvent[] = [
    { type: "message", data: '{"type":"hello","name":"pc-é"}' },
    { type: "message", data: new Uint8Array([0, 1, 2, 255]) },
    { type: "message", data: "" },
    { type: "message", data: "x".repeat(300) },
  ];
  assert.deepEqual(new FrameReader(16384).push(bytes), want);
  assert.deepEqual(byteByByte(new FrameReader(16384), bytes), want);
});

Deno.test("FrameReader: a fragmented message with a ping between its fragments; pong; close", () => {
  const r = new FrameReader(16384);
  const events = r.push(join(
    clientFrame(OP_TEXT, "hel", { fin: false }),
    clientFrame(OP_PING, "are you there"),
    clientFrame(OP_CONTINUATION, "lo ", { fin: false }),
    clientFrame(OP_CONTINUATION, "world"),
    clientFrame(OP_PONG, ""),
    clientFrame(OP_CLOSE, closePayload(1000, "bye")),
    clientFrame(OP_TEXT, "after the close: not read"),
  ));
  assert.deepEqual(events, [
    { type: "ping", data: new TextEncoder().encode("are you there") },
    { type: "message", data: "hello world" },
    { type: "pong", data: new Uint8Array(0) },
    { type: "close", code: 1000, reason: "bye" },
  ]);
  assert.ok(r.done);
  assert.deepEqual(new FrameReader(100).push(clientFrame(OP_CLOSE, "")), [
    { type: "close", code: 1005, reason: "" },
  ]);
});

Deno.test("FrameReader: a header announcing 1 GiB is refused with 1009 at its 14 bytes, before any payload", () => {
  const r = new FrameReader(16384);
  const head = clientFrame(OP_BINARY, new Uint8Array(0), { announce: 2 ** 30 });
  assert.equal(head.length, 14);
  assert.deepEqual(r.push(head.subarray(0, 13)), []);
  assert.deepEqual(r.push(head.subarray(13)), [
    {
      type: "fail",
      code: 1009,
      reason: "Message of 1073741824 bytes or more is larger than 16384 bytes",
    },
  ]);
  assert.ok(r.done);
  assert.ok(r.held <= 14, `holds ${r.held} bytes`);
  // What follows is not read.
  assert.deepEqual(r.push(new Uint8Array(65536)), []);
  // A length of 2^63 and more (the top bit) and one of 16385 are over too.
  const top = clientFrame(OP_TEXT, new Uint8Array(0), { announce: 2 ** 30 });
  top[2] = 0x80;
  assert.equal((new FrameReader(16384).push(top)[0] as { code: number }).code, 1009);
  const over = new FrameReader(16384).push(
    clientFrame(OP_TEXT, new Uint8Array(0), { announce: 16385 }),
  );
  assert.equal((over[0] as { code: number }).code, 1009);
});

Deno.test("FrameReader: a message of exactly the limit passes; fragments past it are refused at the header", () => {
  const limit = 16384;
  const exact = new FrameReader(limit).push(clientFrame(OP_TEXT, "a".repeat(limit)));
  assert.deepEqual(exact, [{ type: "message", data: "a".repeat(limit) }]);
  // 8 KiB fragments: two make the limit, the third's header passes it.
  const r = new FrameReader(limit);
  const piece = "b".repeat(8192);
  assert.deepEqual(r.push(clientFrame(OP_TEXT, piece, { fin: false })), []);
  assert.deepEqual(r.push(clientFrame(OP_CONTINUATION, piece, { fin: false })), []);
  const third = clientFrame(OP_CONTINUATION, piece, { fin: false });
  assert.deepEqual(r.push(third.subarray(0, 8)), [{
    type: "fail",
    code: 1009,
    reason: "Message of 24576 bytes or more is larger than 16384 bytes",
  }]);
  assert.ok(r.held <= 14);
  // Many tiny fragments: the buffer never passes the limit.
  const tiny = new FrameReader(limit);
  let most = 0;
  tiny.push(clientFrame(OP_TEXT, "c", { fin: false }));
  let failed: FrameEvent | undefined;
  for (let i = 0; i < limit + 10 && !failed; i++) {
    failed = tiny.push(clientFrame(OP_CONTINUATION, "c", { fin: false }))[0];
    most = Math.max(most, tiny.held);
  }
  assert.equal(failed?.type === "fail" && failed.code, 1009);
  assert.ok(most <= limit + 14, `held ${most}`);
});

Deno.test("FrameReader: protocol errors are 1002 (1007 for text that is not UTF-8)", () => {
  const cases: [string, Uint8Array, number, RegExp][] = [
    ["unmasked", clientFrame(OP_TEXT, "hi", { masked: false }), 1002, /must be masked/],
    ["reserved bit", clientFrame(OP_TEXT, "hi", { rsv: 0x40 }), 1002, /Reserved bits/],
    ["opcode 3", clientFrame(3, "hi"), 1002, /Unknown opcode 3/],
    ["opcode 11", clientFrame(11, "hi"), 1002, /Unknown opcode 11/],
    ["ping of 126", clientFrame(OP_PING, "p".repeat(126)), 1002, /Control frame of 126 bytes/],
    ["fragmented ping", clientFrame(OP_PING, "p", { fin: false }), 1002, /cannot be fragmented/],
    ["lone continuation", clientFrame(OP_CONTINUATION, "x"), 1002, /without a message/],
    [
      "text inside a fragmented message",
      join(clientFrame(OP_TEXT, "a", { fin: false }), clientFrame(OP_TEXT, "b")),
      1002,
      /before the fragmented one ended/,
    ],
    ["text not UTF-8", clientFrame(OP_TEXT, new Uint8Array([0xc3, 0x28])), 1007, /not UTF-8/],
    ["close of 1 byte", clientFrame(OP_CLOSE, new Uint8Array([3])), 1002, /1 byte/],
    ["close code 1005", clientFrame(OP_CLOSE, closePayload(1005, "")), 1002, /Close code 1005/],
    ["close code 999", clientFrame(OP_CLOSE, closePayload(999, "")), 1002, /Close code 999/],
    [
      "close reason not UTF-8",
      clientFrame(OP_CLOSE, new Uint8Array([3, 232, 0xff])),
      1007,
      /not UTF-8/,
    ],
  ];
  for (const [what, bytes, code, reason] of cases) {
    const r = new FrameReader(16384);
    const events = r.push(join(bytes, clientFrame(OP_TEXT, "not read")));
    assert.equal(events.length, 1, what);
    const e = events[0];
    assert.ok(e.type === "fail", `${what}: ${JSON.stringify(e)}`);
    assert.equal(e.code, code, what);
    assert.match(e.reason, reason, what);
    assert.ok(r.done, what);
  }
});

Deno.test("encodeFrame: the three length forms; closePayload cuts the reason at a character", () => {
  for (const [n, head] of [[0, 2], [125, 2], [126, 4], [65535, 4], [65536, 10]]) {
    const f = encodeFrame(OP_TEXT, new Uint8Array(n).fill(7));
    assert.equal(f.length, head + n, `length ${n}`);
    assert.equal(f[0], 0x81);
    assert.equal(f[1] & 0x80, 0, "a server's frame is not masked");
    const len7 = f[1] & 127;
    const got = len7 < 126
      ? len7
      : len7 === 126
      ? (f[2] << 8) | f[3]
      : Number(new DataView(f.buffer).getBigUint64(2));
    assert.equal(got, n);
  }
  const long = closePayload(1008, "é".repeat(100));
  assert.equal((long[0] << 8) | long[1], 1008);
  assert.equal(long.length, 2 + 122, "61 two-byte characters (123 would split one)");
  assert.equal(new TextDecoder("utf-8", { fatal: true }).decode(long.subarray(2)), "é".repeat(61));
});

Deno.test("FrameReader: one buffer for every message: a shorter one after a longer, a binary one kept", () => {
  const r = new FrameReader(16384);
  const first = r.push(clientFrame(OP_BINARY, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])));
  assert.deepEqual(r.push(clientFrame(OP_TEXT, "x".repeat(300))), [
    { type: "message", data: "x".repeat(300) },
  ]);
  assert.deepEqual(r.push(clientFrame(OP_TEXT, "hi")), [{ type: "message", data: "hi" }]);
  // The binary message is its own copy: the text after it did not write over it.
  assert.deepEqual(first, [{ type: "message", data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) }]);
});
