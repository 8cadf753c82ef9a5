// Kernel module dependencies: parse modules.dep (or build the same graph from each module's
// .modinfo "depends=" when the unpacked kernel package has none), pick the modules the
// initramfs needs with everything they depend on, and render modules.dep/modules.alias for
// that subset so busybox modprobe works inside the initramfs.

/** Module path relative to /lib/modules/KVER (e.g. "kernel/drivers/net/virtio_net.ko") -> the
 * paths it needs, in modules.dep order (modprobe loads them from the last to the first). */
export type ModuleGraph = Map<string, string[]>;

const KO = /\.ko(\.(xz|zst|gz))?$/;

/** "kernel/drivers/nvme/host/nvme-core.ko" -> "nvme_core" (the kernel treats - and _ alike). */
export function moduleNameOf(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1).replace(KO, "");
  return base.replaceAll("-", "_");
}

export function parseModulesDep(text: string, source = "modules.dep"): ModuleGraph {
  const graph: ModuleGraph = new Map();
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const colon = line.indexOf(":");
    const path = colon < 0 ? "" : line.slice(0, colon).trim();
    if (!KO.test(path)) {
      throw new SyntaxError(
        `Cannot parse line ${i + 1} of "${source}": expected "<module>.ko: <deps>", got "${line}"`,
      );
    }
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    graph.set(path, deps);
  });
  return graph;
}

export function renderModulesDep(graph: ModuleGraph, paths: Iterable<string>): string {
  return [...paths].sort().map((p) => {
    const deps = graph.get(p) ?? [];
    return deps.length ? `${p}: ${deps.join(" ")}\n` : `${p}:\n`;
  }).join("");
}

/**
 * Build a modules.dep-style graph from direct dependencies (each module's .modinfo "depends="
 * names): transitive, each module listed before what it needs, as depmod writes it.
 */
export function graphFromDirectDeps(direct: Map<string, string[]>): ModuleGraph {
  const byName = new Map<string, string>();
  for (const path of direct.keys()) byName.set(moduleNameOf(path), path);
  const graph: ModuleGraph = new Map();
  for (const path of [...direct.keys()].sort()) {
    const post: string[] = [];
    const seen = new Set<string>([path]);
    const visit = (p: string, chain: string[]) => {
      for (const name of direct.get(p) ?? []) {
        const dep = byName.get(name.replaceAll("-", "_"));
        if (!dep) {
          throw new TypeError(
            `Cannot resolve dependency "${name}" of "${p}": no module of that name`,
          );
        }
        if (chain.includes(dep)) {
          throw new TypeError(`Cannot order modules: "${dep}" depends on itself through "${p}"`);
        }
        if (seen.has(dep)) continue;
        seen.add(dep);
        visit(dep, [...chain, dep]);
        post.push(dep);
      }
    };
    visit(path, [path]);
    graph.set(path, post.reverse());
  }
  return graph;
}

export interface Resolved {
  /** Every module to ship, sorted. */
  paths: string[];
  /** Requested names that match no module (the kernel may have them built in). */
  missing: string[];
}

/**
 * Pick modules by name ("virtio_net", "e1000e") or by folder ("kernel/drivers/net/ethernet/",
 * ending in "/"), plus everything they depend on.
 */
export function resolveModules(graph: ModuleGraph, wanted: string[]): Resolved {
  const byName = new Map<string, string>();
  for (const path of graph.keys()) byName.set(moduleNameOf(path), path);
  const picked = new Set<string>();
  const missing: string[] = [];
  const add = (path: string) => {
    if (picked.has(path)) return;
    picked.add(path);
    for (const dep of graph.get(path) ?? []) {
      if (!graph.has(dep)) {
        throw new TypeError(`Cannot resolve "${path}": it needs "${dep}", which is not listed`);
      }
      add(dep);
    }
  };
  for (const w of wanted) {
    if (w.endsWith("/")) {
      const under = [...graph.keys()].filter((p) => p.startsWith(w));
      if (under.length === 0) missing.push(w);
      under.forEach(add);
      continue;
    }
    const path = byName.get(w.replaceAll("-", "_"));
    if (path) add(path);
    else missing.push(w);
  }
  return { paths: [...picked].sort(), missing };
}

/** modules.alias lines ("alias <pattern> <module>") for the shipped modules. */
export function renderModulesAlias(aliases: Map<string, string[]>): string {
  const lines: string[] = [];
  for (const path of [...aliases.keys()].sort()) {
    const name = moduleNameOf(path);
    for (const a of aliases.get(path)!) lines.push(`alias ${a} ${name}\n`);
  }
  return lines.join("");
}
