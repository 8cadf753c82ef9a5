// Is a PE/COFF file (an EFI program, a kernel with an EFI stub) signed? Secure Boot firmware
// and shim run only signed ones: the Authenticode signature sits where the PE optional
// header's certificate table entry points. Pure; reads the headers only, checks no signature.

/** Bytes of the certificate table (0: unsigned). TypeError when not a PE file. */
export function peSignatureSize(bytes: Uint8Array, source = "file"): number {
  const fail = (why: string) => new TypeError(`Cannot read "${source}" as a PE file: ${why}`);
  if (bytes.length < 0x40 || bytes[0] !== 0x4d || bytes[1] !== 0x5a) throw fail("no MZ header");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pe = v.getUint32(0x3c, true);
  if (pe + 24 > bytes.length || v.getUint32(pe, true) !== 0x00004550) {
    throw fail("no PE signature");
  }
  const opt = pe + 24;
  const magic = v.getUint16(opt, true);
  // The data directories start at 96 (PE32) or 112 (PE32+); the certificate table is entry 4.
  const dirs = magic === 0x20b ? opt + 112 : magic === 0x10b ? opt + 96 : -1;
  if (dirs < 0) throw fail(`unknown optional header magic 0x${magic.toString(16)}`);
  if (dirs + 5 * 8 > bytes.length) throw fail("headers cut short");
  return v.getUint32(dirs + 4 * 8 + 4, true);
}
