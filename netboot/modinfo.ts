// Read a kernel module's .modinfo section (null-separated "key=value" strings: depends=,
// alias=, firmware=) straight from the ELF file. Hand-written because the unpacked Debian
// kernel has no modules.dep and we want no modinfo/kmod tools on the build machine.

export interface ModInfo {
  name?: string;
  depends: string[];
  aliases: string[];
  firmware: string[];
}

function cstr(bytes: Uint8Array, at: number): string {
  let end = at;
  while (end < bytes.length && bytes[end] !== 0) end++;
  return new TextDecoder().decode(bytes.subarray(at, end));
}

/** Parse the .modinfo of an uncompressed 64-bit little-endian ELF module. */
export function readModinfo(bytes: Uint8Array, source = "module"): ModInfo {
  const fail = (why: string) => new TypeError(`Cannot read .modinfo of "${source}": ${why}`);
  if (bytes.length < 64 || bytes[0] !== 0x7f || cstr(bytes.subarray(1, 4), 0) !== "ELF") {
    throw fail("not an ELF file");
  }
  if (bytes[4] !== 2 || bytes[5] !== 1) throw fail("not a 64-bit little-endian ELF file");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true);
  const shnum = v.getUint16(0x3c, true);
  const shstrndx = v.getUint16(0x3e, true);
  if (shoff + shnum * shentsize > bytes.length || shstrndx >= shnum) {
    throw fail("section table out of range");
  }
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return {
      name: v.getUint32(at, true),
      offset: Number(v.getBigUint64(at + 0x18, true)),
      size: Number(v.getBigUint64(at + 0x20, true)),
    };
  };
  const strtab = section(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (cstr(bytes, strtab.offset + s.name) !== ".modinfo") continue;
    if (s.offset + s.size > bytes.length) throw fail(".modinfo out of range");
    const info: ModInfo = { depends: [], aliases: [], firmware: [] };
    const text = new TextDecoder().decode(bytes.subarray(s.offset, s.offset + s.size));
    for (const kv of text.split("\0")) {
      const eq = kv.indexOf("=");
      if (eq < 0) continue;
      const key = kv.slice(0, eq), value = kv.slice(eq + 1);
      if (key === "name") info.name = value;
      else if (key === "depends") info.depends.push(...value.split(",").filter(Boolean));
      else if (key === "alias") info.aliases.push(value);
      else if (key === "firmware") info.firmware.push(value);
    }
    return info;
  }
  throw fail("no .modinfo section");
}
