// The build-netboot shell: gather the kernel, modules, busybox and the Cascade binary, write
// the initramfs through our cpio writer and the zstd CLI, and render the boot configs. All the
// deciding lives in the pure modules; this file runs the steps in order (each step is a
// build_*.ts of its own) and writes build.json and the report.

import { createHash } from "node:crypto";
import { basename, join, resolve } from "node:path";
import { gatherUserland } from "./build_binary.ts";
import { addSecureBootChain } from "./build_secureboot.ts";
import { OutputFolder, writeBootConfigs } from "./build_configs.ts";
import { type BuildInfo, renderBuildInfo } from "./build_info.ts";
import { gatherFirmware } from "./build_firmware.ts";
import { writeCompressed } from "./build_initrd.ts";
import { checkInputs } from "./build_inputs.ts";
import { gatherModules } from "./build_modules.ts";
import type { BuildOptions, BuildReport } from "./build_options.ts";
import { cpioPieces } from "./cpio.ts";
import { EARLY_MODULES } from "./hardware.ts";
import { renderInit, renderUdhcpcScript } from "./init_script.ts";
import { initramfsEntries } from "./initramfs.ts";
import { DEFAULT_KERNEL_ARGS } from "./ipxe.ts";
import { moduleNameOf, renderModulesAlias, renderModulesDep } from "./modules_dep.ts";

export type { BuildOptions, BuildReport };

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

export async function buildNetboot(o: BuildOptions): Promise<BuildReport> {
  const t0 = performance.now();
  await checkInputs(o);
  const out = resolve(o.out);
  const work = join(out, ".work");
  await Deno.mkdir(work, { recursive: true });
  const kver = basename(resolve(o.modules));

  const { resolved, modules, aliases, plainGraph, firmwareWanted } = await gatherModules(o);
  const { firmware, missingFirmware } = await gatherFirmware(o, firmwareWanted);

  const { busybox, applets, cascade, libraries } = await gatherUserland(o, work);

  const fallbackModules = resolved.paths.filter((p) =>
    p.startsWith("kernel/drivers/net/") || p.includes("/virtio")
  ).map(moduleNameOf);
  const entries = initramfsEntries({
    kernelVersion: kver,
    busybox,
    applets,
    init: renderInit({ fallbackModules, earlyModules: EARLY_MODULES }),
    udhcpcScript: renderUdhcpcScript(),
    modules,
    modulesDep: renderModulesDep(plainGraph, plainGraph.keys()),
    modulesAlias: renderModulesAlias(aliases),
    firmware,
    cascade,
    libraries,
  });

  o.log(`initramfs: writing cpio and compressing with zstd -${o.zstdLevel}`);
  const initrdTmp = join(out, "initrd.partial");
  const cpioBytes = await writeCompressed(cpioPieces(entries), o.zstdLevel, initrdTmp);
  await Deno.rename(initrdTmp, join(out, "initrd"));
  await Deno.copyFile(o.kernel, join(out, "vmlinuz"));

  const folder = new OutputFolder(out, ["vmlinuz", "initrd"]);
  const signed = o.secureBoot
    ? await addSecureBootChain(o.secureBoot, out, o.master, o.kernel)
    : undefined;
  if (signed) {
    folder.written.push(...signed.written);
    o.log(`secure boot: shim -> GRUB -> kernel, all signed, from ${o.secureBoot}`);
  }
  await writeBootConfigs(o, folder, signed !== undefined);
  const report: BuildReport = {
    binaryMode: cascade.mode,
    kernelVersion: kver,
    modules: modules.length,
    missingModules: resolved.missing,
    firmware: firmware.length,
    missingFirmware,
    cpioBytes,
    files: [],
    seconds: 0,
  };
  const info: BuildInfo = {
    master: o.master,
    kernelVersion: kver,
    kernelArgs: o.kernelArgs,
    binaryMode: cascade.mode,
    compression: `zstd -${o.zstdLevel}`,
    target: o.target,
    after: o.after,
    modules: modules.length,
    firmware: firmware.length,
    secureBoot: signed !== undefined,
    cpioBytes,
    // What went in, so the same build can be made again (and checked against this one).
    inputs: {
      kernel: { path: resolve(o.kernel), sha256: sha256(await Deno.readFile(o.kernel)) },
      modules: { path: resolve(o.modules) },
      busybox: { path: resolve(o.busybox), sha256: sha256(busybox) },
      deno: {
        path: Deno.execPath(),
        version: Deno.version.deno,
        sha256: sha256(
          cascade.mode === "bundle" ? cascade.deno : await Deno.readFile(Deno.execPath()),
        ),
      },
      cascade: {
        mode: cascade.mode,
        sha256: sha256(cascade.mode === "bundle" ? cascade.bundle : cascade.executable),
      },
      ...signed?.inputs,
    },
  };
  await folder.write("build.json", renderBuildInfo(info));
  await Deno.remove(work, { recursive: true });
  for (const rel of folder.written) {
    report.files.push({ path: rel, bytes: (await Deno.stat(join(out, rel))).size });
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

export { DEFAULT_KERNEL_ARGS };
