import assert from "node:assert/strict";
import { readModinfo } from "./modinfo.ts";
import { fakeModule } from "./modules_testkit.ts";

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
