// Test helpers for module handling: a minimal kernel-module ELF file built in memory.

/** A minimal ELF64 LE file: null section, .modinfo, .shstrtab. */
export function fakeModule(modinfo: string): Uint8Array {
  const enc = new TextEncoder();
  const info = enc.encode(modinfo);
  const shstr = enc.encode("\0.modinfo\0.shstrtab\0");
  const infoAt = 64, strAt = infoAt + info.length, shoff = (strAt + shstr.length + 7) & ~7;
  const bytes = new Uint8Array(shoff + 3 * 64);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  bytes.set(info, infoAt);
  bytes.set(shstr, strAt);
  const v = new DataView(bytes.buffer);
  v.setBigUint64(0x28, BigInt(shoff), true);
  v.setUint16(0x3a, 64, true);
  v.setUint16(0x3c, 3, true);
  v.setUint16(0x3e, 2, true);
  const sec = (i: number, name: number, off: number, size: number) => {
    v.setUint32(shoff + i * 64, name, true);
    v.setBigUint64(shoff + i * 64 + 0x18, BigInt(off), true);
    v.setBigUint64(shoff + i * 64 + 0x20, BigInt(size), true);
  };
  sec(1, 1, infoAt, info.length);
  sec(2, 10, strAt, shstr.length);
  return bytes;
}
