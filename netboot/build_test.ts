// One whole build on fixtures (a fake kernel and module tree, the real busybox and deno), read
// back with zstd and the system cpio.
import assert from "node:assert/strict";
import { join } from "node:path";
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
      firmwareDir: join(dir, "firmware"),
      entry: join(dir, "entry.ts"),
      compileTimeout: 0,
      ipxeDir: join(dir, "no-ipxe"),
      log: (l) => lines.push(l),
    });
    assert.equal(report.binaryMode, "bundle");
    assert.equal(report.modules, 3);
    assert.deepEqual(report.missingFirmware, ["x.fw"]);
    assert.ok(lines.some((l) => /reading each module's .modinfo/.test(l)), lines.join("\n"));
    assert.deepEqual(report.files.map((f) => f.path).sort(), [
      "build.json",
      "dnsmasq.conf",
      "first-stage.ipxe",
      "image.ipxe",
      "initrd",
      "tftp/pxelinux.cfg/default",
      "vmlinuz",
    ]);
    assert.equal(await Deno.readTextFile(join(out, "vmlinuz")), "not really a kernel");
    const build = JSON.parse(await Deno.readTextFile(join(out, "build.json")));
    assert.equal(build.kernelArgs, "console=ttyS0");
    assert.equal(build.master, "http://10.9.0.1:8080");
    assert.equal(build.target, "/dev/vda");
    assert.equal(build.after, "poweroff");

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
