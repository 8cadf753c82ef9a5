// The functions a V8 CPU profile (deno --cpu-prof) spent its time in: self time and total time
// (self plus what it called), the top N of each, as a table. bench_dashboard.ts --profile DIR
// writes the master's profile; this names what costs the master CPU.
//
//   deno run -R scripts/profile_top.ts DIR/CPU.*.cpuprofile [--top 30] [--from S] [--to S]
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  self: number;
  total: number;
}

/** Self and total milliseconds per function (name + file:line) over samples in [from, to) s. */
export function profileTop(p: Profile, from = 0, to = Infinity): { rows: Row[]; ms: number } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: ProfileNode) => {
    const f = n.callFrame;
    const file = f.url.split("/").slice(-2).join("/");
    return `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
  };
  const self = new Map<string, number>(), total = new Map<string, number>();
  let t = 0, ms = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] / 1000;
    t += dt;
    if (t / 1000 < from || t / 1000 >= to) continue;
    const node = byId.get(p.samples[i]);
    if (!node) continue;
    const name = label(node);
    if (node.callFrame.functionName === "(idle)") continue;
    ms += dt;
    self.set(name, (self.get(name) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const l = label(byId.get(id)!);
      if (seen.has(l)) continue;
      seen.add(l);
      total.set(l, (total.get(l) ?? 0) + dt);
    }
  }
  const rows = [...total].map(([name, tot]) => ({ name, self: self.get(name) ?? 0, total: tot }));
  return { rows, ms };
}

if (import.meta.main) {
  const { values: v, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: "string", default: "30" },
      from: { type: "string", default: "0" },
      to: { type: "string", default: "Infinity" },
    },
  });
  if (positionals.length !== 1) {
    console.error("Usage: profile_top.ts FILE.cpuprofile [--top N] [--from S] [--to S]");
    Deno.exit(2);
  }
  const p = JSON.parse(await Deno.readTextFile(positionals[0])) as Profile;
  const { rows, ms } = profileTop(p, Number(v.from), Number(v.to));
  const top = Number(v.top);
  const show = (title: string, key: "self" | "total") => {
    console.log(`\n${title} (of ${ms.toFixed(0)} ms busy)`);
    for (const r of [...rows].sort((a, b) => b[key] - a[key]).slice(0, top)) {
      console.log(`${r.self.toFixed(0).padStart(8)} ${r.total.toFixed(0).padStart(8)}  ${r.name}`);
    }
  };
  console.log("    self    total  function");
  show("by self time", "self");
  show("by total time", "total");
}
