// build-netboot's modules step: the module graph the drivers are resolved through (modules.dep,
// else each module's .modinfo) and the modules' bytes, uncompressed.

import { join } from "node:path";
import { exists } from "./build_exec.ts";
import { readModinfo } from "./modinfo.ts";
import { graphFromDirectDeps, type ModuleGraph, parseModulesDep } from "./modules_dep.ts";

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
