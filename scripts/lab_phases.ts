// Where a Cascade run's time goes (issue 11: the fixed cost of every run): each PC's moments
// from its own structured log and the master's, as seconds from the fake server's join (the
// moment bench:lab starts its clock; negative: before it), and per phase the median over the
// PCs and the last PC's own figure. Pure parsing and formatting; bench:lab --phases prints it
// after every relay run, and `deno run -A scripts/lab_phases.ts RUN_DIR...` for kept runs
// (bench:lab --keep).
import { join } from "node:path";

/** The moments of one PC, seconds from the fake server's join (NaN where not logged). */
export interface PcMoments {
  name: string;
  /** Its first log line (the target chosen: manifest fetched, client up). */
  start: number;
  /** Its probe of the master ended (hello goes right after). */
  probe: number;
  /** The master welcomed it. */
  hello: number;
  /** The fake server joined: 0 by definition (bench:lab's clock starts). */
  join: number;
  /** The master assigned it its last server (the one it finished from). */
  assigned: number;
  /** Its first chunk verified and written. */
  first: number;
  /** Its last chunk verified and written (the transfer ended). */
  last: number;
  /** Its read-back of what verify-behind had not read ended. */
  readback: number;
  /** The master counted it verified (its proof checked). */
  verified: number;
}

export const MOMENTS = [
  "start",
  "probe",
  "hello",
  "join",
  "assigned",
  "first",
  "last",
  "readback",
  "verified",
] as const;

/** The phases between consecutive moments (what the table shows). */
type Moment = typeof MOMENTS[number];

export const PHASES: { name: string; from: Moment; to: Moment }[] = [
  { name: "client up -> probe done", from: "start", to: "probe" },
  { name: "probe -> welcome", from: "probe", to: "hello" },
  { name: "fake join -> assigned", from: "join", to: "assigned" },
  { name: "assigned -> first chunk", from: "assigned", to: "first" },
  { name: "first -> last chunk", from: "first", to: "last" },
  { name: "last chunk -> read-back done", from: "last", to: "readback" },
  { name: "read-back -> verified (proof)", from: "readback", to: "verified" },
];

const time = (line: string) => Date.parse(line.slice(0, 24)) / 1000;

/** The time of the last line matching `re`, or NaN. */
function lastAt(lines: string[], re: RegExp): number {
  for (let i = lines.length - 1; i >= 0; i--) if (re.test(lines[i])) return time(lines[i]);
  return NaN;
}

function firstAt(lines: string[], re: RegExp): number {
  for (const l of lines) if (re.test(l)) return time(l);
  return NaN;
}

/** Every PC's moments from the logs' text (pure): the master's, the fake server's join in it. */
export function parseMoments(master: string, pcs: Map<string, string>): PcMoments[] {
  const m = master.split("\n");
  const t0 = firstAt(m, /master\.join peer=\S+ role=fake/);
  const out: PcMoments[] = [];
  for (const [name, text] of pcs) {
    const l = text.split("\n").filter((x) => /^\d{4}-/.test(x));
    const esc = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const rel = (t: number) => t - t0;
    // The transfer it finished with: its last fetch.start, then the first chunk after that.
    const lastStart = lastAt(l, /\.fetch\.start /);
    const first = l.find((x) => /\.fetch\.first /.test(x) && time(x) >= lastStart);
    out.push({
      name,
      start: rel(time(l[0] ?? "")),
      probe: rel(firstAt(l, /\.probe(-skipped)? /)),
      hello: rel(firstAt(l, /\.welcome /)),
      join: 0,
      assigned: rel(
        lastAt(
          m,
          new RegExp(`master\\.(assign|move) .*(clients=(\\S+,)?${esc}(,|\\s|$)|peer=${esc} )`),
        ),
      ),
      first: rel(first ? time(first) : NaN),
      last: rel(lastAt(l, /\.fetch\.done /)),
      readback: rel(lastAt(l, /\.readback\.done /)),
      verified: rel(firstAt(m, new RegExp(`master\\.verified peer=${esc} `))),
    });
  }
  return out;
}

export function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const k = Math.floor(s.length / 2);
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
}

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "-");

/** The per-phase table (pure): per phase the PC verified first (a chain's head), the median
 * over PCs and the PC verified last, each the median over the runs. */
export function phaseTable(runs: PcMoments[][]): string {
  const lastPcs = runs.map((pcs) =>
    pcs.reduce((a, b) => (b.verified > a.verified ? b : a), pcs[0])
  );
  const firstPcs = runs.map((pcs) =>
    pcs.reduce((a, b) => (b.verified < a.verified ? b : a), pcs[0])
  );
  const head = ["phase", "first PC (s)", "median PC (s)", "last PC (s)"];
  const rows = PHASES.map((p) => {
    const all = runs.flat().map((x) => x[p.to] - x[p.from]);
    const first = firstPcs.map((x) => x[p.to] - x[p.from]);
    const last = lastPcs.map((x) => x[p.to] - x[p.from]);
    return [p.name, f(median(first)), f(median(all)), f(median(last))];
  });
  rows.push([
    "fake join -> verified",
    f(median(firstPcs.map((x) => x.verified))),
    f(median(runs.flat().map((x) => x.verified))),
    f(median(lastPcs.map((x) => x.verified))),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((x, i) => (i === 0 ? x.padEnd(w[i]) : x.padStart(w[i]))).join("  ").trimEnd();
  return [line(head), line(w.map((n) => "-".repeat(n))), ...rows.map(line)].join("\n");
}

/** The moments of a run kept on disk (its logs/ folder, as runCascade writes it). */
export async function readRun(dir: string): Promise<PcMoments[]> {
  const logs = join(dir, "logs");
  const master = await Deno.readTextFile(join(logs, "master.log"));
  const pcs = new Map<string, string>();
  for await (const e of Deno.readDir(logs)) {
    const m = /^(pc\d+)\.log$/.exec(e.name);
    if (m) pcs.set(m[1], await Deno.readTextFile(join(logs, e.name)));
  }
  return parseMoments(master, pcs);
}

if (import.meta.main) {
  if (!Deno.args.length || Deno.args.includes("-h") || Deno.args.includes("--help")) {
    console.log("USAGE: deno run -A scripts/lab_phases.ts RUN_DIR... (bench:lab --keep's runs)");
    Deno.exit(Deno.args.length ? 0 : 2);
  }
  const runs = [];
  for (const d of Deno.args) runs.push(await readRun(d));
  console.log(phaseTable(runs));
}
