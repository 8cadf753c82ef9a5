// `cascade build-netboot`: write the kernel, the initramfs carrying Cascade, and the iPXE,
// PXELINUX and dnsmasq configs into one folder the master serves from /boot.
import { fileURLToPath } from "node:url";
import {
  type CommandSpec,
  formatBytes,
  formatDuration,
  parseCommand,
  requireOption,
  UsageError,
} from "../imagetools/kit/mod.ts";
import { buildNetboot, DEFAULT_KERNEL_ARGS } from "./build.ts";
import { checkAfter, checkMasterUrl, checkTarget } from "./cmdline.ts";

const SPEC: CommandSpec = {
  name: "build-netboot",
  summary: "write the kernel, an initramfs carrying Cascade, and iPXE/PXELINUX/dnsmasq configs",
  usage: "--master URL [options]",
  options: {
    master: {
      type: "string",
      arg: "URL",
      help: "Master URL as the PCs reach it, e.g. http://10.0.0.1:8080",
      env: "CASCADE_MASTER",
    },
    out: { type: "string", arg: "DIR", help: "Output folder", default: "dist/netboot" },
    kernel: {
      type: "string",
      arg: "FILE",
      help: "Kernel image (default /boot/vmlinuz-$(uname -r))",
      env: "CASCADE_KERNEL",
    },
    modules: {
      type: "string",
      arg: "DIR",
      help: "Its modules folder (default /lib/modules/$(uname -r))",
      env: "CASCADE_MODULES",
    },
    busybox: { type: "string", arg: "FILE", help: "Static busybox", default: "/bin/busybox" },
    target: {
      type: "string",
      arg: "RULE|DISK",
      help:
        'Disk the PCs image: a target rule (default "auto": the first non-removable disk of at ' +
        "least the image's size; path:, model:, min:, max:, usb, largest) or a device path",
      default: "auto",
      env: "CASCADE_TARGET",
    },
    after: {
      type: "string",
      arg: "ACTION",
      help: "After imaging: serve (until the run ends, then power off), reboot or poweroff",
      default: "serve",
    },
    "kernel-args": {
      type: "string",
      arg: "ARGS",
      help: "Kernel arguments besides cascade.* (the last console= shows /init's messages)",
      default: DEFAULT_KERNEL_ARGS,
    },
    zstd: {
      type: "string",
      arg: "LEVEL",
      help: "zstd level for the initramfs (1-19); 9: 10% smaller than 3 for ~0.5 s more, " +
        "19: 10% smaller again but ~60 s to build; unpacking takes the same",
      default: "9",
    },
    nics: {
      type: "string",
      arg: "SET",
      help: "NIC drivers: all (every ethernet driver of the kernel) or common",
      default: "all",
    },
    firmware: {
      type: "string",
      arg: "DIR",
      multiple: true,
      help: "Also take the firmware files the modules name from DIR (searched before " +
        "/lib/firmware; repeatable), e.g. an unpacked firmware-realtek (see NETBOOT.md)",
    },
    "pxe-server": {
      type: "string",
      arg: "ADDR",
      help: "This machine's IPv4 address on the lab network, for dnsmasq.conf " +
        "(default: the master URL's, if it is an address)",
    },
    "proxy-subnet": {
      type: "string",
      arg: "ADDR",
      help: "An address of the lab's subnet for dnsmasq.conf (default: --pxe-server)",
    },
    "secure-boot": {
      type: "string",
      arg: "DIR",
      help: "Add Debian's signed chain for Secure Boot PCs (shim -> GRUB -> this kernel, which " +
        "must be Debian's signed one): DIR from bash scripts/fetch_secureboot.sh",
      env: "CASCADE_SECURE_BOOT",
    },
    "compile-timeout": {
      type: "string",
      arg: "SECONDS",
      help: "How long deno compile may try before falling back to deno + bundle",
      default: "60",
    },
  },
  notes: [
    "Writes DIR/vmlinuz, DIR/initrd (zstd cpio), DIR/first-stage.ipxe, DIR/image.ipxe,",
    "DIR/dnsmasq.conf, DIR/tftp/ (iPXE binaries, pxelinux.cfg/default) and DIR/build.json.",
    "No kernel here? bash scripts/fetch_kernel.sh prints --kernel and --modules paths.",
    "See NETBOOT.md for wiring it into a lab.",
  ],
};

async function uname(): Promise<string> {
  const out = await new Deno.Command("uname", { args: ["-r"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

function check<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new UsageError((e as Error).message, { cause: e });
  }
}

export async function buildNetbootMain(args: string[]): Promise<number> {
  const p = parseCommand(SPEC, args);
  if (!p) return 0;
  const v = p.values as Record<string, string | undefined>;
  const master = check(() => checkMasterUrl(requireOption(SPEC, p, "master")));
  const level = Number(v.zstd);
  if (!Number.isInteger(level) || level < 1 || level > 19) {
    throw new UsageError(`Bad --zstd "${v.zstd}": must be a whole number from 1 to 19`);
  }
  if (v.nics !== "all" && v.nics !== "common") {
    throw new UsageError(`Bad --nics "${v.nics}": must be all or common`);
  }
  const timeout = Number(v["compile-timeout"]);
  if (!(timeout >= 0)) throw new UsageError(`Bad --compile-timeout "${v["compile-timeout"]}"`);
  const kver = v.kernel && v.modules ? "" : await uname();
  const started = performance.now();
  const log = (line: string) =>
    console.error(`[${((performance.now() - started) / 1000).toFixed(1)}s] ${line}`);
  const report = await buildNetboot({
    master,
    out: v.out!,
    kernel: v.kernel ?? `/boot/vmlinuz-${kver}`,
    modules: v.modules ?? `/lib/modules/${kver}`,
    busybox: v.busybox!,
    target: check(() => checkTarget(v.target!, "--target")),
    after: check(() => checkAfter(v.after!, "--after")),
    kernelArgs: v["kernel-args"]!,
    zstdLevel: level,
    nics: v.nics,
    firmwareDirs: [...((p.values.firmware as string[] | undefined) ?? []), "/lib/firmware"],
    proxySubnet: v["proxy-subnet"],
    pxeServer: v["pxe-server"],
    entry: fileURLToPath(new URL("../cascade.ts", import.meta.url)),
    compileTimeout: timeout,
    ipxeDir: "/usr/lib/ipxe",
    syslinuxDir: "/usr/lib",
    secureBoot: v["secure-boot"],
    log,
  });
  const width = Math.max(...report.files.map((f) => f.path.length)) + 2;
  console.log(`Wrote ${v.out}:`);
  for (const f of report.files) {
    console.log(`  ${f.path.padEnd(width)}${formatBytes(f.bytes).padStart(10)}`);
  }
  const initrd = report.files.find((f) => f.path === "initrd")!;
  console.log(
    [
      `binary: ${
        report.binaryMode === "compiled"
          ? "deno compile (one executable)"
          : "deno executable + deno bundle of cascade.ts (deno compile's runtime was unavailable)"
      }`,
      `kernel ${report.kernelVersion}, ${report.modules} modules, ${report.firmware} firmware files`,
      `initramfs: ${formatBytes(report.cpioBytes)} cpio -> ${
        formatBytes(initrd.bytes)
      } with zstd -${level} (zstd: the kernel unpacks it fast; -9 is the sweet spot: ` +
      "-3 is 10% bigger, -19 10% smaller but ~60 s to build)",
      `took ${formatDuration(report.seconds)}`,
    ].join("\n"),
  );
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await buildNetbootMain(Deno.args));
  } catch (e) {
    console.error(`cascade build-netboot: ${(e as Error).message}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
