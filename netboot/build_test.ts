// One whole build on fixtures (a fake kernel and module tree, the real busybox and deno), read
// back with zstd and the system cpio.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseBuildInfo } from "./build_info.ts";
import { buildNetboot } from "./build.ts";
import { readModinfo } from "./modinfo.ts";
import { fakeModule } from "./modules_testkit.ts";

Deno.test("buildNetboot writes kernel, initramfs and configs (no modules.dep: .modinfo)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const mods = join(dir, "lib/modules/6.1.0-9-amd64");
    const mk = async (rel: string, info: string) => {
      await Deno.mkdir(join(mods, rel, ".."), { recursive: true });
      await Deno.writeFile(join(mods, rel), fakeModule(info));
    };
    await mk("kernel/drivers/net/virtio_net.ko", "depends=virtio\0alias=virtio:d00000001v*\0");
    await mk("kernel/drivers/virtio/virtio.ko", "depends=\0");
    await mk("kernel/drivers/net/ethernet/intel/e1000/e1000.ko", "depends=\0firmware=x.fw\0");
    await mk("kernel/sound/snd.ko", "depends=\0");
    // Firmware: e1000 names x.fw (missing) and rtl_nic/a.fw (.xz: the kernel loads it) and
    // b.fw (.zst: this kernel cannot, so the build decompresses it).
    await mk(
      "kernel/drivers/net/usb/r8152.ko",
      "depends=\0firmware=rtl_nic/a.fw\0firmware=rtl_nic/b.fw\0",
    );
    const fw = join(dir, "firmware/rtl_nic");
    await Deno.mkdir(fw, { recursive: true });
    await Deno.writeFile(`${fw}/a.fw.xz`, new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]));
    const zst = await new Deno.Command("sh", {
      args: ["-c", `printf 'firmware b' | zstd -q -o "${fw}/b.fw.zst"`],
    }).output();
    assert.ok(zst.success);
    await Deno.writeTextFile(
      join(dir, "config-6.1.0-9-amd64"),
      "CONFIG_FW_LOADER_COMPRESS=y\nCONFIG_FW_LOADER_COMPRESS_XZ=y\n" +
        "# CONFIG_FW_LOADER_COMPRESS_ZSTD is not set\n",
    );
    await Deno.writeTextFile(join(dir, "vmlinuz"), "not really a kernel");
    await Deno.writeTextFile(join(dir, "entry.ts"), 'console.log("cascade stand-in");\n');
    await Deno.writeTextFile(join(dir, "deno.json"), "{}\n");
    const lines: string[] = [];
    const out = join(dir, "out");
    const report = await buildNetboot({
      master: "http://10.9.0.1:8080",
      out,
      kernel: join(dir, "vmlinuz"),
      modules: mods,
      busybox: "/bin/busybox",
      target: "/dev/vda",
      after: "poweroff",
      kernelArgs: "console=ttyS0",
      zstdLevel: 1,
      nics: "all",
      firmwareDirs: [join(dir, "firmware")],
      entry: join(dir, "entry.ts"),
      compileTimeout: 0,
      ipxeDir: join(dir, "no-ipxe"),
      log: (l) => lines.push(l),
    });
    assert.equal(report.binaryMode, "bundle");
    assert.equal(report.modules, 4);
    assert.equal(report.firmware, 2);
    assert.deepEqual(report.missingFirmware, ["x.fw"]);
    assert.ok(lines.some((l) => /reading each module's .modinfo/.test(l)), lines.join("\n"));
    assert.deepEqual(report.files.map((f) => f.path).sort(), [
      "build.json",
      "dnsmasq.conf",
      "first-stage.ipxe",
      "image.ipxe",
      "initrd",
      "tftp/first-stage.ipxe",
      "tftp/pxelinux.cfg/default",
      "vmlinuz",
    ]);
    // dnsmasq serves the same first stage over TFTP (it runs when the master is down).
    assert.equal(
      await Deno.readTextFile(join(out, "tftp/first-stage.ipxe")),
      await Deno.readTextFile(join(out, "first-stage.ipxe")),
    );
    assert.equal(await Deno.readTextFile(join(out, "vmlinuz")), "not really a kernel");
    const build = parseBuildInfo(await Deno.readTextFile(join(out, "build.json")));
    assert.equal(build.kernelArgs, "console=ttyS0");
    assert.equal(build.master, "http://10.9.0.1:8080");
    assert.equal(build.target, "/dev/vda");
    assert.equal(build.after, "poweroff");
    const hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
    assert.equal(build.inputs.kernel.sha256, hex(await Deno.readFile(join(dir, "vmlinuz"))));
    assert.equal(build.inputs.busybox.sha256, hex(await Deno.readFile("/bin/busybox")));
    assert.equal(build.inputs.busybox.path, "/bin/busybox");
    assert.equal(build.inputs.deno.version, Deno.version.deno);
    assert.equal(build.inputs.deno.sha256, hex(await Deno.readFile(Deno.execPath())));
    assert.equal(build.inputs.cascade.mode, "bundle");
    assert.match(build.inputs.cascade.sha256, /^[0-9a-f]{64}$/);

    // Unpack the initramfs with the system tools and look inside.
    const root = join(dir, "root");
    await Deno.mkdir(root);
    const unpack = await new Deno.Command("sh", {
      args: [
        "-c",
        `zstd -dc "${out}/initrd" | cpio -id --quiet --no-absolute-filenames 2>&1 | grep -v mknod || true`,
      ],
      cwd: root,
    }).output();
    assert.ok(unpack.success);
    const m = join(root, "lib/modules/6.1.0-9-amd64");
    assert.equal(
      await Deno.readTextFile(join(m, "modules.dep")),
      "kernel/drivers/net/ethernet/intel/e1000/e1000.ko:\n" +
        "kernel/drivers/net/usb/r8152.ko:\n" +
        "kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio.ko\n" +
        "kernel/drivers/virtio/virtio.ko:\n",
    );
    assert.equal(
      await Deno.readTextFile(join(m, "modules.alias")),
      "alias virtio:d00000001v* virtio_net\n",
    );
    assert.deepEqual(
      readModinfo(await Deno.readFile(join(m, "kernel/drivers/virtio/virtio.ko"))).depends,
      [],
    );
    assert.equal(await Deno.readLink(join(root, "bin/sh")), "../bin/busybox");
    // The .xz as it was (the kernel decompresses it), the .zst decompressed under its plain name.
    assert.deepEqual(
      await Deno.readFile(join(root, "lib/firmware/rtl_nic/a.fw.xz")),
      new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]),
    );
    assert.equal(await Deno.readTextFile(join(root, "lib/firmware/rtl_nic/b.fw")), "firmware b");
    assert.match(
      await Deno.readTextFile(join(root, "init")),
      /^EARLY_MODULES="usbhid hid_generic hid_logitech_dj r8152 cdc_ether usb_storage uas sd_mod"$/m,
    );
    assert.match(await Deno.readTextFile(join(root, "init")), /^#!\/bin\/sh/);
    assert.match(await Deno.readTextFile(join(root, "lib/cascade.js")), /cascade stand-in/);
    assert.ok((await Deno.stat(join(root, "bin/deno"))).size > 1e6);
    // The bundle runs under the shipped deno, without a config or npm cache.
    const ran = await new Deno.Command(join(root, "bin/deno"), {
      args: ["run", "-A", "--no-config", join(root, "lib/cascade.js")],
      env: { DENO_DIR: join(dir, "denodir") },
      stdout: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(ran.stdout), "cascade stand-in\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
