import assert from "node:assert/strict";
import { commonModules, EARLY_MODULES, MODULE_SETS } from "./hardware.ts";
import { moduleNameOf, parseModulesDep, resolveModules } from "./modules_dep.ts";

// Debian 12's kernel (6.1.0-57-amd64): the lines of its modules.dep for our sets and what they
// need, cut out with resolveModules + renderModulesDep from the real file.
const debian = parseModulesDep(
  await Deno.readTextFile(new URL("./testdata/debian-6.1-hardware.modules.dep", import.meta.url)),
);

Deno.test("every module of every set is a module of Debian's kernel (none built in, none renamed)", () => {
  const r = resolveModules(debian, commonModules());
  assert.deepEqual(r.missing, []);
  assert.equal(r.paths.length, 74);
});

Deno.test("the new PCs' hardware resolves with what it needs", () => {
  const names = (wanted: string[]) => resolveModules(debian, wanted).paths.map(moduleNameOf).sort();
  // USB keyboard: the HID core and the USB core come along.
  assert.deepEqual(names(["usbhid", "hid_generic"]), [
    "hid",
    "hid_generic",
    "usb_common",
    "usbcore",
    "usbhid",
  ]);
  // NVMe behind Intel VMD ("RAID On").
  assert.deepEqual(names(["vmd"]), ["vmd"]);
  // eMMC and SD cards.
  assert.deepEqual(names(["sdhci_pci", "mmc_block"]), [
    "cqhci",
    "mmc_block",
    "mmc_core",
    "sdhci",
    "sdhci_pci",
  ]);
  // USB NICs: Realtek, Ethernet-over-USB (CDC) and ASIX AX88179 adapters.
  assert.deepEqual(names(["r8152", "cdc_ether", "ax88179_178a"]), [
    "ax88179_178a",
    "cdc_ether",
    "mii",
    "r8152",
    "usb_common",
    "usbcore",
    "usbnet",
  ]);
});

Deno.test("the early modules are in the sets; no module is in two sets", () => {
  const all = commonModules();
  for (const m of EARLY_MODULES) assert.ok(all.includes(m), m);
  assert.equal(new Set(all).size, all.length);
  assert.ok(MODULE_SETS.every((s) => s.modules.length > 0 && s.what));
});
