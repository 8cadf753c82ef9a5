import assert from "node:assert/strict";
import { kernelFirmwareCompression, resolveFirmware } from "./firmware.ts";

// The firmware folders of a build machine: the admin's unpacked non-free package first, then
// the system's (Debian 12 ships .xz; a newer linux-firmware may ship .zst).
const FILES = new Set([
  "/srv/fw/rtl_nic/rtl8168h-2.fw",
  "/lib/firmware/rtl_nic/rtl8168h-2.fw.xz",
  "/lib/firmware/rtl_nic/rtl8125b-2.fw.xz",
  "/lib/firmware/bnx2/bnx2-mips-09-6.2.1b.fw.zst",
  "/lib/firmware/tigon/tg3.bin",
]);
const WANTED = new Map([
  ["rtl_nic/rtl8168h-2.fw", "r8169"],
  ["rtl_nic/rtl8125b-2.fw", "r8169"],
  ["bnx2/bnx2-mips-09-6.2.1b.fw", "bnx2"],
  ["tigon/tg3.bin", "tg3"],
  ["tigon/tg3_tso5.bin", "tg3"],
]);
const has = (p: string) => FILES.has(p);

Deno.test("resolveFirmware: the added folder first, compressed names shipped as the kernel loads them", () => {
  const r = resolveFirmware(WANTED, ["/srv/fw/", "/lib/firmware"], new Set(["xz"]), has);
  assert.deepEqual(r, {
    picks: [
      // .zst on a kernel that loads only .xz: decompressed at build time, plain name.
      {
        name: "bnx2/bnx2-mips-09-6.2.1b.fw",
        source: "/lib/firmware/bnx2/bnx2-mips-09-6.2.1b.fw.zst",
        ship: "bnx2/bnx2-mips-09-6.2.1b.fw",
        decompress: "zst",
      },
      {
        name: "rtl_nic/rtl8125b-2.fw",
        source: "/lib/firmware/rtl_nic/rtl8125b-2.fw.xz",
        ship: "rtl_nic/rtl8125b-2.fw.xz",
      },
      // Found plain in /srv/fw, which wins over the system's .xz.
      {
        name: "rtl_nic/rtl8168h-2.fw",
        source: "/srv/fw/rtl_nic/rtl8168h-2.fw",
        ship: "rtl_nic/rtl8168h-2.fw",
      },
      { name: "tigon/tg3.bin", source: "/lib/firmware/tigon/tg3.bin", ship: "tigon/tg3.bin" },
    ],
    missing: ["tigon/tg3_tso5.bin"],
  });
});

Deno.test("resolveFirmware decompresses everything for a kernel that loads no compressed firmware", () => {
  const r = resolveFirmware(WANTED, ["/lib/firmware"], new Set(), has);
  assert.deepEqual(
    r.picks.map((p) => [p.ship, p.decompress]),
    [
      ["bnx2/bnx2-mips-09-6.2.1b.fw", "zst"],
      ["rtl_nic/rtl8125b-2.fw", "xz"],
      ["rtl_nic/rtl8168h-2.fw", "xz"],
      ["tigon/tg3.bin", undefined],
    ],
  );
  assert.deepEqual(r.missing, ["tigon/tg3_tso5.bin"]);
});

Deno.test("resolveFirmware refuses a name that leaves the firmware folder", () => {
  assert.throws(
    () =>
      resolveFirmware(new Map([["../../etc/shadow", "evil"]]), ["/lib/firmware"], new Set(), has),
    /Bad firmware name "..\/..\/etc\/shadow" named by "evil": not a relative path/,
  );
});

Deno.test("kernelFirmwareCompression reads the kernel's build config", () => {
  // Debian 12's 6.1 kernel.
  const debian12 = "CONFIG_FW_LOADER=y\nCONFIG_FW_LOADER_COMPRESS=y\n" +
    "CONFIG_FW_LOADER_COMPRESS_XZ=y\n# CONFIG_FW_LOADER_COMPRESS_ZSTD is not set\n";
  assert.deepEqual(kernelFirmwareCompression(debian12), new Set(["xz"]));
  const both = "CONFIG_FW_LOADER_COMPRESS=y\nCONFIG_FW_LOADER_COMPRESS_XZ=y\n" +
    "CONFIG_FW_LOADER_COMPRESS_ZSTD=y\n";
  assert.deepEqual(kernelFirmwareCompression(both), new Set(["xz", "zst"]));
  // 5.x: one switch, xz only.
  assert.deepEqual(kernelFirmwareCompression("CONFIG_FW_LOADER_COMPRESS=y\n"), new Set(["xz"]));
  assert.deepEqual(
    kernelFirmwareCompression("# CONFIG_FW_LOADER_COMPRESS is not set\n"),
    new Set(),
  );
  assert.deepEqual(kernelFirmwareCompression(undefined), new Set());
});
