// The build-netboot shell: gather the kernel, modules, busybox and the Cascade binary, write
// the initramfs through our cpio writer and the zstd CLI, and render the boot configs. All the
// deciding lives in the pure modules; this file only reads, runs and writes.

import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { buildBinary } from "./build_binary.ts";
import { run } from "./build_exec.ts";
import { gatherFirmware } from "./build_firmware.ts";
import { writeCompressed } from "./build_initrd.ts";
import { checkInputs } from "./build_inputs.ts";
import { loadModuleGraph, readModule } from "./build_modules.ts";
import type { BuildOptions, BuildReport } from "./build_options.ts";
import { clientArgs } from "./cmdline.ts";
import { cpioPieces } from "./cpio.ts";
import { renderDnsmasqConf } from "./dnsmasq.ts";
import { renderInit, renderUdhcpcScript } from "./init_script.ts";
import { initramfsEntries, type InitramfsParts, parseLdd } from "./initramfs.ts";
import { DEFAULT_KERNEL_ARGS, renderFirstStage, renderImageScript } from "./ipxe.ts";
import { readModinfo } from "./modinfo.ts";
import {
  type ModuleGraph,
  moduleNameOf,
  renderModulesAlias,
  renderModulesDep,
  resolveModules,
} from "./modules_dep.ts";
import { renderPxelinuxConfig } from "./pxelinux.ts";
import { ALL_NIC_FOLDERS, commonModules, EARLY_MODULES } from "./hardware.ts";

export type { BuildOptions, BuildReport };

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

export async function buildNetboot(o: BuildOptions): Promise<BuildReport> {
  const t0 = performance.now();
  await checkInputs(o);
  const out = resolve(o.out);
  const work = join(out, ".work");
  await Deno.mkdir(work, { recursive: true });
  const kver = basename(resolve(o.modules));

  // Modules.
  const graph = await loadModuleGraph(o.modules, o.log);
  const wanted = o.nics === "all" ? [...commonModules(), ...ALL_NIC_FOLDERS] : commonModules();
  const resolved = resolveModules(graph, wanted);
  const modules: InitramfsParts["modules"] = [];
  const aliases = new Map<string, string[]>();
  const firmwareWanted = new Map<string, string>();
  for (const path of resolved.paths) {
    const data = await readModule(join(o.modules, path));
    const plainPath = path.replace(/\.ko\.(xz|zst|gz)$/, ".ko");
    modules.push({ path: plainPath, data });
    const info = readModinfo(data, path);
    aliases.set(plainPath, info.aliases);
    info.firmware.forEach((f) => firmwareWanted.set(f, moduleNameOf(path)));
  }
  const plainGraph: ModuleGraph = new Map(
    resolved.paths.map((p) => [
      p.replace(/\.ko\.(xz|zst|gz)$/, ".ko"),
      (graph.get(p) ?? []).map((d) => d.replace(/\.ko\.(xz|zst|gz)$/, ".ko")),
    ]),
  );
  o.log(
    `modules: ${modules.length} (${
      resolved.missing.length
        ? `not found, maybe built in: ${resolved.missing.join(" ")}`
        : "all found"
    })`,
  );
  const { firmware, missingFirmware } = await gatherFirmware(o, firmwareWanted);

  // Busybox and the Cascade binary.
  const busybox = await Deno.readFile(o.busybox);
  const list = await run(o.busybox, ["--list-full"]);
  if (!list.ok) throw new Error(`Cannot list busybox applets: ${list.stderr.trim()}`);
  const cascade = await buildBinary(o, work);
  const exePath = cascade.mode === "compiled" ? join(work, "cascade") : Deno.execPath();
  const ldd = await run("ldd", [exePath]);
  const libraries = [];
  for (const path of ldd.ok ? parseLdd(ldd.stdout) : []) {
    libraries.push({ path, data: await Deno.readFile(path) });
  }
  o.log(
    `binary: ${cascade.mode === "compiled" ? "deno compile" : "deno + bundle"}, ` +
      `${libraries.length} shared libraries`,
  );

  const fallbackModules = resolved.paths.filter((p) =>
    p.startsWith("kernel/drivers/net/") || p.includes("/virtio")
  ).map(moduleNameOf);
  const entries = initramfsEntries({
    kernelVersion: kver,
    busybox,
    applets: list.stdout.split("\n").filter(Boolean),
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

  // Boot configs and the iPXE binaries for TFTP.
  const settings = {
    master: o.master,
    target: o.target,
    after: o.after,
  };
  clientArgs(settings); // checks every setting before anything is written
  const written: string[] = ["vmlinuz", "initrd"];
  const write = async (rel: string, text: string) => {
    await Deno.mkdir(dirname(join(out, rel)), { recursive: true });
    await Deno.writeTextFile(join(out, rel), text);
    written.push(rel);
  };
  await write("first-stage.ipxe", renderFirstStage(o.master));
  await write(
    "image.ipxe",
    renderImageScript({
      bootUrl: `${o.master.replace(/\/+$/, "")}/boot`,
      mac: "any PC",
      settings,
      kernelArgs: o.kernelArgs,
    }),
  );
  await write(
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
      await Deno.mkdir(join(out, "tftp"), { recursive: true });
      await Deno.copyFile(join(o.ipxeDir, f), join(out, "tftp", f));
      written.push(`tftp/${f}`);
    } catch {
      o.log(`tftp: no ${join(o.ipxeDir, f)} (apt-get install ipxe); PXE firmware needs it`);
    }
  }
  const host = new URL(o.master).hostname;
  const bootServer = o.pxeServer ?? (/^\d+\.\d+\.\d+\.\d+$/.test(host) ? host : undefined);
  if (bootServer) {
    await write(
      "dnsmasq.conf",
      renderDnsmasqConf({
        masterUrl: o.master,
        tftpRoot: join(out, "tftp"),
        mode: { kind: "proxy", subnet: o.proxySubnet ?? bootServer, bootServer },
      }),
    );
  } else {
    o.log("dnsmasq: pass --pxe-server (this machine's lab address) to write dnsmasq.conf");
  }
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
  await write(
    "build.json",
    JSON.stringify(
      {
        master: o.master,
        kernelVersion: kver,
        kernelArgs: o.kernelArgs,
        binaryMode: cascade.mode,
        compression: `zstd -${o.zstdLevel}`,
        target: o.target,
        after: o.after,
        modules: modules.length,
        firmware: firmware.length,
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
        },
      },
      null,
      2,
    ) + "\n",
  );
  await Deno.remove(work, { recursive: true });
  for (const rel of written) {
    report.files.push({ path: rel, bytes: (await Deno.stat(join(out, rel))).size });
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

export { DEFAULT_KERNEL_ARGS };
