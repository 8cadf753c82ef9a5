// The build-netboot shell: gather the kernel, modules, busybox and the Cascade binary, write
// the initramfs through our cpio writer and the zstd CLI, and render the boot configs. All the
// deciding lives in the pure modules; this file only reads, runs and writes.

import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { clientArgs } from "./cmdline.ts";
import { cpioPieces } from "./cpio.ts";
import { renderDnsmasqConf } from "./dnsmasq.ts";
import { renderInit, renderUdhcpcScript } from "./init_script.ts";
import {
  type CascadeBinary,
  initramfsEntries,
  type InitramfsParts,
  parseLdd,
} from "./initramfs.ts";
import { DEFAULT_KERNEL_ARGS, renderFirstStage, renderImageScript } from "./ipxe.ts";
import { readModinfo } from "./modinfo.ts";
import {
  graphFromDirectDeps,
  type ModuleGraph,
  moduleNameOf,
  parseModulesDep,
  renderModulesAlias,
  renderModulesDep,
  resolveModules,
} from "./modules_dep.ts";
import { renderPxelinuxConfig } from "./pxelinux.ts";
import { ALL_NIC_FOLDERS, commonModules, EARLY_MODULES } from "./hardware.ts";
import { kernelFirmwareCompression, resolveFirmware } from "./firmware.ts";
import type { AfterAction } from "./cmdline.ts";

export interface BuildOptions {
  master: string;
  out: string;
  kernel: string;
  modules: string;
  busybox: string;
  target: string;
  after: AfterAction;
  kernelArgs: string;
  /** zstd level 1..19. */
  zstdLevel: number;
  /** "all": every ethernet and USB NIC driver of the kernel too; "common": hardware.ts's sets. */
  nics: "all" | "common";
  /** Firmware folders, searched in this order (an added folder first, the system's last). */
  firmwareDirs: string[];
  /** Subnet (or any address in it) for the proxy-DHCP dnsmasq config (default: pxeServer). */
  proxySubnet?: string;
  /** This machine's IPv4 address on the lab network (default: the master URL's, if an IP). */
  pxeServer?: string;
  /** TypeScript entry for the binary (default: the repo's cascade.ts). */
  entry: string;
  /** Seconds to let `deno compile` try before falling back to deno + bundle. */
  compileTimeout: number;
  ipxeDir: string;
  log: (line: string) => void;
}

export interface BuildReport {
  binaryMode: "compiled" | "bundle";
  kernelVersion: string;
  modules: number;
  missingModules: string[];
  firmware: number;
  missingFirmware: string[];
  cpioBytes: number;
  files: { path: string; bytes: number }[];
  seconds: number;
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function run(cmd: string, args: string[], timeoutMs?: number) {
  const signal = timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined;
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdout: "piped",
      stderr: "piped",
      signal,
      env: { NO_COLOR: "1" },
    })
      .output();
    const dec = new TextDecoder();
    return { ok: out.success, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot run "${cmd}": not installed`, { cause });
    }
    throw cause;
  }
}

async function exists(path: string) {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

const FETCH_HINT = "get one with: bash scripts/fetch_kernel.sh  (then pass the --kernel and " +
  "--modules it prints)";

async function checkInputs(o: BuildOptions) {
  if (!(await exists(o.kernel))) {
    throw new Error(`Cannot find a kernel at "${o.kernel}": ${FETCH_HINT}`);
  }
  if (!(await exists(o.modules))) {
    throw new Error(`Cannot find kernel modules at "${o.modules}": ${FETCH_HINT}`);
  }
  if (!(await exists(o.busybox))) {
    throw new Error(
      `Cannot find busybox at "${o.busybox}": apt-get install busybox-static (or pass --busybox)`,
    );
  }
  const ldd = await run("ldd", [o.busybox]);
  if (ldd.ok && /=>/.test(ldd.stdout)) {
    throw new Error(
      `Cannot use "${o.busybox}": it is dynamically linked; install busybox-static (/bin/busybox)`,
    );
  }
}

/** The module graph: modules.dep when the tree has one, else each module's .modinfo. */
async function loadModuleGraph(root: string, log: (l: string) => void): Promise<ModuleGraph> {
  const depFile = join(root, "modules.dep");
  if (await exists(depFile)) {
    log(`modules: dependencies from ${depFile}`);
    return parseModulesDep(await Deno.readTextFile(depFile), depFile);
  }
  log(`modules: no modules.dep in ${root}; reading each module's .modinfo "depends="`);
  const direct = new Map<string, string[]>();
  const walk = async (dir: string, rel: string) => {
    for await (const e of Deno.readDir(dir)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(join(dir, e.name), r);
      else if (/\.ko(\.(xz|zst|gz))?$/.test(e.name)) {
        direct.set(r, (await readModinfoOf(join(root, r))).depends);
      }
    }
  };
  await walk(join(root, "kernel"), "kernel");
  return graphFromDirectDeps(direct);
}

/** Module bytes, uncompressed (busybox modprobe and our .modinfo reader want plain ELF). */
async function readModule(path: string): Promise<Uint8Array> {
  const tool = path.endsWith(".xz")
    ? "xz"
    : path.endsWith(".zst")
    ? "zstd"
    : path.endsWith(".gz")
    ? "gzip"
    : null;
  if (!tool) return await Deno.readFile(path);
  const out = await new Deno.Command(tool, { args: ["-dc", path], stdout: "piped" }).output();
  if (!out.success) throw new Error(`Cannot decompress module "${path}" with ${tool}`);
  return out.stdout;
}

async function readModinfoOf(path: string) {
  return readModinfo(await readModule(path), path);
}

/** The kernel's build config (boot/config-KVER beside the kernel), if it is there. */
async function readKernelConfig(kernel: string, kver: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(join(dirname(kernel), `config-${kver}`));
  } catch {
    return undefined;
  }
}

function existsSync(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Firmware the modules name, from the folders; compressed files shipped as the kernel loads. */
async function gatherFirmware(o: BuildOptions, wanted: Map<string, string>) {
  const kver = basename(resolve(o.modules));
  const loads = kernelFirmwareCompression(await readKernelConfig(o.kernel, kver));
  const found = resolveFirmware(wanted, o.firmwareDirs, loads, existsSync);
  const firmware: InitramfsParts["firmware"] = [];
  let unpacked = 0;
  for (const pick of found.picks) {
    if (!pick.decompress) {
      firmware.push({ path: pick.ship, data: await Deno.readFile(pick.source) });
      continue;
    }
    const tool = pick.decompress === "xz" ? "xz" : "zstd";
    const out = await new Deno.Command(tool, { args: ["-dc", pick.source], stdout: "piped" })
      .output();
    if (!out.success) throw new Error(`Cannot decompress firmware "${pick.source}" with ${tool}`);
    firmware.push({ path: pick.ship, data: out.stdout });
    unpacked++;
  }
  o.log(
    `firmware: ${firmware.length} of ${wanted.size} files the modules name, from ` +
      `${o.firmwareDirs.join(", ")} (${unpacked} decompressed: the kernel loads ${
        loads.size ? [...loads].map((c) => `.${c}`).join(" and ") : "no compressed"
      } firmware itself); ${found.missing.length} not found (non-free firmware: see NETBOOT.md, ` +
      "--firmware DIR)",
  );
  return { firmware, missingFirmware: found.missing };
}

async function buildBinary(o: BuildOptions, work: string): Promise<CascadeBinary> {
  const exe = join(work, "cascade");
  const config = join(dirname(o.entry), "deno.json");
  o.log(`binary: trying deno compile (up to ${o.compileTimeout} s)`);
  const compiled = o.compileTimeout <= 0
    ? { ok: false, stdout: "", stderr: "skipped (--compile-timeout 0)" }
    : await run(
      Deno.execPath(),
      ["compile", "-A", "--no-check", "--config", config, "-o", exe, o.entry],
      o.compileTimeout * 1000,
    ).catch((e) => ({ ok: false, stdout: "", stderr: String(e) }));
  if (compiled.ok && (await exists(exe))) {
    return { mode: "compiled", executable: await Deno.readFile(exe) };
  }
  // deno prints the error, then its causes ("0: ...", "1: ..."): the last cause says why.
  const lines = compiled.stderr.split("\n").map((l) => l.trim())
    .filter((l) => l && !/^(Stack backtrace|\d+: <unknown>)/.test(l));
  const why = lines.filter((l) => /^\d+: /.test(l)).pop()?.replace(/^\d+: /, "") ??
    lines[0] ?? "no runtime";
  o.log(`binary: deno compile failed (${why.trim()}); using deno + deno bundle instead`);
  const bundle = join(work, "cascade.js");
  const b = await run(Deno.execPath(), [
    "bundle",
    "--platform",
    "deno",
    "--no-check",
    "--config",
    config,
    "-o",
    bundle,
    o.entry,
  ]);
  if (!b.ok) throw new Error(`Cannot bundle "${o.entry}": ${b.stderr.trim()}`);
  return {
    mode: "bundle",
    deno: await Deno.readFile(Deno.execPath()),
    bundle: await Deno.readFile(bundle),
  };
}

async function writeCompressed(
  pieces: Iterable<Uint8Array>,
  level: number,
  dest: string,
): Promise<number> {
  const child = new Deno.Command("zstd", {
    args: [`-${level}`, "-T0", "-q", "-f", "-o", dest],
    stdin: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  let total = 0;
  for (const p of pieces) {
    await w.write(p);
    total += p.length;
  }
  await w.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(
      `Cannot compress the initramfs with zstd: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return total;
}

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
