import assert from "node:assert/strict";
import { assertGolden } from "./golden.ts";
import { renderPxelinuxConfig } from "./pxelinux.ts";

const base = {
  kernel: "http://10.0.0.1:8080/boot/vmlinuz",
  initrd: "http://10.0.0.1:8080/boot/initrd",
  settings: { master: "http://10.0.0.1:8080", target: "/dev/sda", after: "reboot" as const },
};

Deno.test("PXELINUX config (image and local) matches its golden files", async () => {
  await assertGolden("pxelinux-image.cfg", renderPxelinuxConfig({ ...base, mode: "image" }));
  await assertGolden("pxelinux-local.cfg", renderPxelinuxConfig({ ...base, mode: "local" }));
});

Deno.test("PXELINUX config refuses paths with spaces", () => {
  assert.throws(
    () => renderPxelinuxConfig({ ...base, kernel: "my kernel", mode: "image" }),
    /Bad kernel path "my kernel"/,
  );
});
