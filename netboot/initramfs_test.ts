import assert from "node:assert/strict";
import { cascadeWrapper, initramfsEntries, type InitramfsParts, parseLdd } from "./initramfs.ts";

const LDD = `	linux-vdso.so.1 (0x00007ffd)
	libdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f32)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f32)
	/lib64/ld-linux-x86-64.so.2 (0x00007f32)
`;

Deno.test("parseLdd lists the libraries and the loader, not the vDSO", () => {
  assert.deepEqual(parseLdd(LDD), [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib/x86_64-linux-gnu/libdl.so.2",
    "/lib64/ld-linux-x86-64.so.2",
  ]);
  assert.throws(
    () => parseLdd("\tlibfoo.so.1 => not found\n"),
    /Cannot find a library the Cascade binary needs: "libfoo.so.1 => not found"/,
  );
});

function parts(over: Partial<InitramfsParts> = {}): InitramfsParts {
  const b = new Uint8Array([1, 2, 3]);
  return {
    kernelVersion: "6.1.0-9-amd64",
    busybox: b,
    applets: ["/bin/sh", "sbin/modprobe", "usr/bin/wget", "linuxrc"],
    init: "#!/bin/sh\n",
    udhcpcScript: "#!/bin/sh\n",
    modules: [{ path: "kernel/drivers/net/virtio_net.ko", data: b }],
    modulesDep: "kernel/drivers/net/virtio_net.ko:\n",
    modulesAlias: "",
    firmware: [{ path: "rtl_nic/rtl8168h-2.fw", data: b }],
    cascade: { mode: "bundle", deno: b, bundle: b },
    libraries: [{ path: "/lib64/ld-linux-x86-64.so.2", data: b }],
    ...over,
  };
}

Deno.test("initramfsEntries lays out busybox links, modules, firmware and deno + bundle", () => {
  const e = initramfsEntries(parts());
  const by = new Map(e.map((x) => [x.path, x]));
  assert.deepEqual(by.get("bin/sh"), { type: "symlink", path: "bin/sh", target: "../bin/busybox" });
  assert.deepEqual(by.get("usr/bin/wget"), {
    type: "symlink",
    path: "usr/bin/wget",
    target: "../../bin/busybox",
  });
  assert.deepEqual(by.get("linuxrc"), { type: "symlink", path: "linuxrc", target: "bin/busybox" });
  for (
    const p of [
      "init",
      "etc/udhcpc/default.script",
      "lib/modules/6.1.0-9-amd64/kernel/drivers/net/virtio_net.ko",
      "lib/modules/6.1.0-9-amd64/modules.dep",
      "lib/modules/6.1.0-9-amd64/modules.alias",
      "lib/firmware/rtl_nic/rtl8168h-2.fw",
      "bin/deno",
      "lib/cascade.js",
      "/lib64/ld-linux-x86-64.so.2",
      "dev/console",
    ]
  ) assert.ok(by.has(p), p);
  const wrapper = by.get("bin/cascade");
  assert.equal(wrapper?.type, "file");
  assert.equal(new TextDecoder().decode((wrapper as { data: Uint8Array }).data), cascadeWrapper());
});

Deno.test("initramfsEntries ships a compiled binary alone", () => {
  const e = initramfsEntries(
    parts({ cascade: { mode: "compiled", executable: new Uint8Array([9]) } }),
  );
  const paths = new Set(e.map((x) => x.path));
  assert.ok(paths.has("bin/cascade"));
  assert.ok(!paths.has("bin/deno") && !paths.has("lib/cascade.js"));
});
