// build-netboot's modules step: which drivers go in (hardware.ts's sets), the module graph they
// are resolved through (modules.dep, else each module's .modinfo), their bytes, uncompressed, and
// the firmware they name.

import { join } from "node:path";
import { exists } from "./build_exec.ts";
import { readModinfo } from "./modinfo.ts";
import type { BuildOptions } from "./build_options.ts";
import { ALL_NIC_FOLDERS, commonModules } from "./hardware.ts";
import type { InitramfsParts } from "./initramfs.ts";
import {
  graphFromDirectDeps,
  type ModuleGraph,
  moduleNameOf,
  parseModulesDep,
  resolveModules,
} from "./modules_dep.ts";

/** The module graph: modules.dep when the tree has one, else each module's .modinfo. */
export async function loadModuleGraph(
  root: string,
  log: (l: string) => void,
): Promise<ModuleGraph> {
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
export async function readModule(path: string): Promise<Uint8Array> {
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

/** The modules the initramfs carries (uncompressed), their aliases and graph, and the firmware
 * files they name (each with the module that names it). */
export async function gatherModules(o: BuildOptions) {
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
  return { resolved, modules, aliases, plainGraph, firmwareWanted };
}
