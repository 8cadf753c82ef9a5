// zstd chunks: the content size a frame's header declares (each field width zstd writes), and
// decompression bounded by the caller's maximum whatever a header says.
import assert from "node:assert/strict";
import { zstdCompressSync } from "node:zlib";
import {
  ChunkDecodeError,
  compressChunk,
  decompressAtMost,
  decompressChunk,
  zstdContentSize,
  zstdParams,
} from "./zstd_chunks.ts";

const bytesOf = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 5)) & 63);

Deno.test("zstdContentSize: what zstd wrote, for sizes that take 1, 2, 4 and 8 header bytes", () => {
  for (const n of [0, 1, 200, 255, 256, 300, 65_791, 65_792, 70_000, 1 << 20]) {
    const frame = compressChunk(bytesOf(n), 3);
    if (frame) assert.equal(zstdContentSize(frame), n, `${n} bytes`);
  }
  // A frame of unknown size (as a stream writes it) declares none.
  assert.equal(
    zstdContentSize(zstdCompressSync(bytesOf(5000), { params: zstdParams(3) })),
    undefined,
  );
  // An 8-byte field, and a frame with a window descriptor and a dictionary ID before it.
  const eight = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0x50, 1, 0, 0, 0, 1, 0, 0, 0);
  assert.equal(zstdContentSize(eight), 2 ** 32 + 1);
  const dict = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x41, 0x50, 9, 0xe8, 0x03);
  assert.equal(zstdContentSize(dict), 1000 + 256);
});

Deno.test("zstdContentSize: undefined for what is not a zstd frame header, or declares no size", () => {
  assert.equal(zstdContentSize(new Uint8Array(0)), undefined);
  assert.equal(zstdContentSize(new TextEncoder().encode("not zstd at all")), undefined);
  assert.equal(zstdContentSize(Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50)), undefined);
  assert.equal(zstdContentSize(Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x80, 0x50)), undefined);
});

Deno.test("decompressAtMost: right bytes whatever the header says, never more than the maximum", () => {
  const plain = bytesOf(26_000);
  const frame = compressChunk(plain, 3)!;
  assert.deepEqual(decompressAtMost(frame, 1 << 20), plain);
  assert.deepEqual(decompressChunk(frame, plain.length), plain);
  // A header that says less than the frame holds: zstd itself refuses the frame.
  const lying = frame.slice();
  assert.equal(lying[4] >> 6, 1, "a 2-byte size field");
  new DataView(lying.buffer).setUint16(lying[4] & 0x20 ? 5 : 6, 100 - 256 + 65_536, true);
  assert.throws(() => decompressAtMost(lying, 1 << 20), ChunkDecodeError);
  // More than the caller allows: refused, whatever size the header declares.
  assert.throws(
    () => decompressAtMost(frame, 25_999),
    (e: Error) => e instanceof ChunkDecodeError && /more than 25999 bytes/.test(e.message),
  );
  assert.throws(
    () => decompressChunk(frame, 30_000),
    /decompresses to 26000 bytes, expected 30000/,
  );
});
