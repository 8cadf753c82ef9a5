// What goes into the initramfs, as cpio entries: busybox and its applet links, /init and the
// udhcpc script, the kernel modules with their own modules.dep/modules.alias, the Cascade binary
// (compiled, or deno + bundled code behind a wrapper) and the shared libraries it needs.
// Pure: the build shell reads the files and hands their bytes in.

import type { CpioEntry } from "./cpio.ts";

export type CascadeBinary =
  | { mode: "compiled"; executable: Uint8Array }
  | { mode: "bundle"; deno: Uint8Array; bundle: Uint8Array };

export interface InitramfsParts {
  kernelVersion: string;
  busybox: Uint8Array;
  /** Applet paths from `busybox --list-full`, e.g. "bin/sh", "sbin/modprobe". */
  applets: string[];
  init: string;
  udhcpcScript: string;
  /** Module files, path relative to /lib/modules/KVER ("kernel/drivers/..."), uncompressed. */
  modules: { path: string; data: Uint8Array }[];
  modulesDep: string;
  modulesAlias: string;
  /** Firmware files relative to /lib/firmware. */
  firmware: { path: string; data: Uint8Array }[];
  cascade: CascadeBinary;
  /** Shared libraries at their absolute paths (e.g. "/lib64/ld-linux-x86-64.so.2"). */
  libraries: { path: string; data: Uint8Array }[];
}

/** The /bin/cascade wrapper when Cascade ships as deno + bundled code. */
export function cascadeWrapper(): string {
  return `#!/bin/sh
# Cascade as deno + bundled code (deno compile's runtime was not available at build time).
# DENO_DIR must be writable: the initramfs root is, /tmp is a tmpfs.
export DENO_DIR="\${DENO_DIR:-/tmp/deno}" DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
exec /bin/deno run -A --no-config --no-lock --cached-only /lib/cascade.js "$@"
`;
}

/** Library paths from `ldd` output ("libc.so.6 => /lib/.../libc.so.6 (0x..)", "/lib64/ld-... (0x..)"). */
export function parseLdd(text: string): string[] {
  const paths = new Set<string>();
  for (const line of text.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (m) paths.add(m[1]);
    else if (/=>\s*not found/.test(line)) {
      throw new TypeError(`Cannot find a library the Cascade binary needs: "${line.trim()}"`);
    }
  }
  return [...paths].sort();
}

const enc = new TextEncoder();
const text = (s: string) => enc.encode(s);

export function initramfsEntries(p: InitramfsParts): CpioEntry[] {
  const entries: CpioEntry[] = [
    { type: "char", path: "dev/console", major: 5, minor: 1 },
    { type: "char", path: "dev/null", mode: 0o666, major: 1, minor: 3 },
    ...["proc", "sys", "run", "root", "mnt", "usr/bin", "usr/sbin"].map((path) => ({
      type: "dir" as const,
      path,
    })),
    { type: "dir", path: "tmp", mode: 0o1777 },
    { type: "file", path: "init", mode: 0o755, data: text(p.init) },
    { type: "file", path: "bin/busybox", mode: 0o755, data: p.busybox },
    {
      type: "file",
      path: "etc/udhcpc/default.script",
      mode: 0o755,
      data: text(p.udhcpcScript),
    },
    { type: "file", path: "etc/passwd", data: text("root:x:0:0:root:/root:/bin/sh\n") },
    { type: "file", path: "etc/group", data: text("root:x:0:\n") },
    { type: "file", path: "etc/hosts", data: text("127.0.0.1 localhost\n::1 localhost\n") },
    { type: "file", path: "etc/nsswitch.conf", data: text("hosts: files dns\n") },
    { type: "file", path: "etc/resolv.conf", data: new Uint8Array() },
  ];
  const taken = new Set(entries.map((e) => e.path));
  for (const applet of p.applets) {
    const path = applet.replace(/^\/+/, "");
    if (path === "bin/busybox" || path === "init" || taken.has(path)) continue;
    taken.add(path);
    const depth = path.split("/").length - 1;
    entries.push({ type: "symlink", path, target: `${"../".repeat(depth)}bin/busybox` });
  }
  const modRoot = `lib/modules/${p.kernelVersion}`;
  for (const m of p.modules) {
    entries.push({ type: "file", path: `${modRoot}/${m.path}`, data: m.data });
  }
  entries.push(
    { type: "file", path: `${modRoot}/modules.dep`, data: text(p.modulesDep) },
    { type: "file", path: `${modRoot}/modules.alias`, data: text(p.modulesAlias) },
  );
  for (const f of p.firmware) {
    entries.push({ type: "file", path: `lib/firmware/${f.path}`, data: f.data });
  }
  if (p.cascade.mode === "compiled") {
    entries.push({ type: "file", path: "bin/cascade", mode: 0o755, data: p.cascade.executable });
  } else {
    entries.push(
      { type: "file", path: "bin/cascade", mode: 0o755, data: text(cascadeWrapper()) },
      { type: "file", path: "bin/deno", mode: 0o755, data: p.cascade.deno },
      { type: "file", path: "lib/cascade.js", data: p.cascade.bundle },
    );
  }
  for (const lib of p.libraries) {
    entries.push({ type: "file", path: lib.path, mode: 0o755, data: lib.data });
  }
  return entries;
}
