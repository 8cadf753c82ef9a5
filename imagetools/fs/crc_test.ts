import assert from "node:assert/strict";
import { crc16, crc32c, crc32cFieldHolds, crc32cRaw } from "./crc.ts";

const CHECK = new TextEncoder().encode("123456789");

Deno.test('crc32c and crc16 give the catalogued check values of "123456789"', () => {
  assert.equal(crc32c(CHECK), 0xe3069283); // CRC-32C (Castagnoli)
  assert.equal(crc16(0, CHECK), 0xbb3d); // CRC-16/ARC, Linux's crc16
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

Deno.test("crc32cRaw chains: any split of the bytes gives the digest of the whole", () => {
  const bytes = Uint8Array.from({ length: 1031 }, (_, i) => (i * 151 + 7) & 255);
  const whole = crc32cRaw(0xffffffff, bytes);
  for (const cut of [0, 1, 7, 8, 9, 500, 1030, 1031]) {
    assert.equal(
      crc32cRaw(crc32cRaw(0xffffffff, bytes.subarray(0, cut)), bytes.subarray(cut)),
      whole,
    );
  }
});

Deno.test("crc32cFieldHolds: a block carrying its own CRC at a field holds, one changed bit does not", () => {
  const block = Uint8Array.from({ length: 512 }, (_, i) => (i * 31) & 255);
  block.fill(0, 224, 228);
  new DataView(block.buffer).setUint32(224, crc32c(block), true);
  assert.ok(crc32cFieldHolds(block, 224));
  block[300] ^= 4;
  assert.ok(!crc32cFieldHolds(block, 224));
});
