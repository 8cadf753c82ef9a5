// Test helper: a minimal PE32+ file whose certificate table says `certBytes` (0: unsigned).
export function fakePe(certBytes: number, tail = ""): Uint8Array {
  const t = new TextEncoder().encode(tail);
  const b = new Uint8Array(0x200 + t.length);
  const v = new DataView(b.buffer);
  b.set([0x4d, 0x5a]);
  v.setUint32(0x3c, 0x80, true);
  v.setUint32(0x80, 0x00004550, true);
  v.setUint16(0x80 + 24, 0x20b, true);
  v.setUint32(0x80 + 24 + 112 + 32, 0x180, true);
  v.setUint32(0x80 + 24 + 112 + 36, certBytes, true);
  b.set(t, 0x200);
  return b;
}
