// Who serves whom, readable at 1,500 PCs: the serving tree cut into runs, where a run is a PC
// and the single-child chain below it (a relay chain of 700 PCs is one run, drawn as one strip,
// named by its ends). Pure and self-contained: the page inlines this function's source (no
// imports, no closures over this module), and the Deno tests call the same code.
import type { FeedPeer } from "../../protocol/mod.ts";

export interface ChainRun {
  /** How far below a root the run starts (a run's first PC hangs under the previous run's last). */
  depth: number;
  /** The PCs of the run, top first. */
  ids: string[];
}

/** The runs of the serving tree, depth first; roots are servers, or clients that serve. */
export function chainRuns(peers: Record<string, FeedPeer>): ChainRun[] {
  const up = (p: FeedPeer) =>
    p.s === "receiving" || p.s === "verifying" || p.ok === 1 ? p.sv : undefined;
  const byName = (a: string, b: string) => a.localeCompare(b, "en", { numeric: true });
  const kids = new Map<string, string[]>();
  for (const id of Object.keys(peers)) {
    const u = up(peers[id]);
    if (u !== undefined && u !== id && peers[u]) {
      if (!kids.has(u)) kids.set(u, []);
      kids.get(u)!.push(id);
    }
  }
  const roots = Object.keys(peers).filter((id) => {
    const u = up(peers[id]);
    return (u === undefined || !peers[u]) && (peers[id].r !== "c" || kids.has(id));
  }).sort(byName);
  const seen = new Set<string>();
  const runs: ChainRun[] = [];
  const walk = (id: string, depth: number) => {
    const ids = [id];
    seen.add(id);
    let at = id;
    for (;;) {
      const next = kids.get(at) ?? [];
      if (next.length !== 1 || seen.has(next[0])) break;
      at = next[0];
      seen.add(at);
      ids.push(at);
    }
    runs.push({ depth, ids });
    for (const k of (kids.get(at) ?? []).sort(byName)) if (!seen.has(k)) walk(k, depth + 1);
  };
  for (const r of roots) if (!seen.has(r)) walk(r, 0);
  // Whatever is left sits on a cycle of old links: start it as a root of its own.
  for (const id of [...kids.keys()].sort(byName)) if (!seen.has(id)) walk(id, 0);
  return runs;
}
