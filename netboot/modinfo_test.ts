import assert from "node:assert/strict";
import { readModinfo } from "./modinfo.ts";

/** A minimal ELF64 LE file: null section, .modinfo, .shstrtab. */
function fakeModule(modinfo: string): Uint8Array {
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

Deno.test("readModinfo reads depends, aliases and firmware", () => {
  const m = fakeModule(
    "license=GPL\0firmware=rtl_nic/rtl8168d-1.fw\0alias=pci:v000010ECd00008168sv*\0" +
      "alias=pci:v000010ECd00008161sv*\0depends=mdio_devres,libphy\0name=r8169\0",
  );
  assert.deepEqual(readModinfo(m), {
    name: "r8169",
    depends: ["mdio_devres", "libphy"],
    aliases: ["pci:v000010ECd00008168sv*", "pci:v000010ECd00008161sv*"],
    firmware: ["rtl_nic/rtl8168d-1.fw"],
  });
  assert.deepEqual(readModinfo(fakeModule("depends=\0")).depends, []);
});

Deno.test("readModinfo says which file is not a module", () => {
  assert.throws(() => readModinfo(new Uint8Array(100), "x.ko"), /"x.ko": not an ELF file/);
});
