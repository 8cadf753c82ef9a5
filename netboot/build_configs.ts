// build-netboot's boot-config step: both iPXE stages, the PXELINUX default, the proxy-DHCP
// dnsmasq config and the iPXE binaries and first stage for TFTP, written into the output folder, which
// remembers every file it wrote for the build's report.
import { dirname, join } from "node:path";
import type { BuildOptions } from "./build_options.ts";
import { clientArgs } from "./cmdline.ts";
import { FIRST_STAGE_TFTP, renderDnsmasqConf } from "./dnsmasq.ts";
import { renderFirstStage, renderImageScript } from "./ipxe.ts";
import { renderPxelinuxConfig } from "./pxelinux.ts";

/** The build's output folder: every file written under it, in order. */
export class OutputFolder {
  readonly root: string;
  readonly written: string[];

  constructor(root: string, written: string[] = []) {
    this.root = root;
    this.written = [...written];
  }

  async write(rel: string, text: string) {
    await Deno.mkdir(dirname(join(this.root, rel)), { recursive: true });
    await Deno.writeTextFile(join(this.root, rel), text);
    this.written.push(rel);
  }

  async copy(from: string, rel: string) {
    await Deno.mkdir(dirname(join(this.root, rel)), { recursive: true });
    await Deno.copyFile(from, join(this.root, rel));
    this.written.push(rel);
  }
}

export async function writeBootConfigs(o: BuildOptions, folder: OutputFolder, secureBoot = false) {
  const settings = {
    master: o.master,
    target: o.target,
    after: o.after,
  };
  clientArgs(settings); // checks every setting before anything is written
  const firstStage = renderFirstStage(o.master);
  await folder.write("first-stage.ipxe", firstStage);
  // dnsmasq hands iPXE this copy over TFTP, so the first stage runs (and boots the disk) even
  // when the master's process is down.
  await folder.write(`tftp/${FIRST_STAGE_TFTP}`, firstStage);
  await folder.write(
    "image.ipxe",
    renderImageScript({
      bootUrl: `${o.master.replace(/\/+$/, "")}/boot`,
      mac: "any PC",
      settings,
      kernelArgs: o.kernelArgs,
    }),
  );
  await folder.write(
    "tftp/pxelinux.cfg/default",
    renderPxelinuxConfig({
      kernel: `${o.master.replace(/\/+$/, "")}/boot/vmlinuz`,
      initrd: `${o.master.replace(/\/+$/, "")}/boot/initrd`,
      settings,
      kernelArgs: o.kernelArgs,
      mode: "local", // the shared default cannot tell PCs apart: only the master enrols
    }),
  );
  for (const f of ["undionly.kpxe", "snponly.efi", "ipxe.efi"]) {
    try {
      await folder.copy(join(o.ipxeDir, f), `tftp/${f}`);
    } catch {
      o.log(`tftp: no ${join(o.ipxeDir, f)} (apt-get install ipxe); PXE firmware needs it`);
    }
  }
  // PXELINUX for labs that boot through it: lpxelinux.0 fetches over HTTP, so with DHCP
  // option 210 (path prefix) = MASTER/boot/ everything after it comes from the master.
  if (o.syslinuxDir) {
    const pxelinux = {
      "lpxelinux.0": "PXELINUX/lpxelinux.0",
      "ldlinux.c32": "syslinux/modules/bios/ldlinux.c32",
      "reboot.c32": "syslinux/modules/bios/reboot.c32",
    };
    for (const [name, rel] of Object.entries(pxelinux)) {
      try {
        await folder.copy(join(o.syslinuxDir, rel), `tftp/${name}`);
      } catch {
        o.log(`tftp: no ${join(o.syslinuxDir, rel)} (apt-get install pxelinux syslinux-common)`);
      }
    }
  }
  const host = new URL(o.master).hostname;
  const bootServer = o.pxeServer ?? (/^\d+\.\d+\.\d+\.\d+$/.test(host) ? host : undefined);
  if (bootServer) {
    await folder.write(
      "dnsmasq.conf",
      renderDnsmasqConf({
        masterUrl: o.master,
        tftpRoot: join(folder.root, "tftp"),
        mode: { kind: "proxy", subnet: o.proxySubnet ?? bootServer, bootServer },
        secureBoot,
      }),
    );
  } else {
    o.log("dnsmasq: pass --pxe-server (this machine's lab address) to write dnsmasq.conf");
  }
}
