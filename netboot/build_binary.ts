// build-netboot's binary step: the Cascade binary for /bin/cascade, from `deno compile` where
// its runtime can be had, else the deno binary plus a `deno bundle`d cascade.js; the build's
// output says which. Busybox and the shared libraries the binary needs come along.

import { dirname, join } from "node:path";
import { exists, run } from "./build_exec.ts";
import type { BuildOptions } from "./build_options.ts";
import { type CascadeBinary, parseLdd } from "./initramfs.ts";

export async function buildBinary(o: BuildOptions, work: string): Promise<CascadeBinary> {
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

/** Tools for finishing steps in the initramfs, with the Debian package that has them. */
export const FINISH_TOOLS: [string, string][] = [["debugfs", "e2fsprogs"]];

/** Busybox and its applets, the Cascade binary and the shared libraries it needs. */
export async function gatherUserland(o: BuildOptions, work: string) {
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
  // Tools the finishing steps may use, with their libraries (debugfs writes into ext4 without
  // mounting it: NETBOOT.md's hostname example).
  const have = new Set(libraries.map((l) => l.path));
  const missing: string[] = [];
  for (const [tool, pkg] of FINISH_TOOLS) {
    const path = `/usr/sbin/${tool}`;
    if (!(await exists(path))) {
      missing.push(`${tool} (${pkg})`);
      continue;
    }
    libraries.push({ path, data: await Deno.readFile(path) });
    const deps = await run("ldd", [path]);
    for (const lib of deps.ok ? parseLdd(deps.stdout) : []) {
      if (have.has(lib)) continue;
      have.add(lib);
      libraries.push({ path: lib, data: await Deno.readFile(lib) });
    }
  }
  o.log(
    `finishing tools: ${
      FINISH_TOOLS.map(([t]) => t).filter((t) => !missing.some((m) => m.startsWith(t))).join(" ") ||
      "none"
    }` +
      (missing.length ? `; missing on this machine: ${missing.join(", ")}` : ""),
  );

  return { busybox, applets: list.stdout.split("\n").filter(Boolean), cascade, libraries };
}
