// bench:bytes' lab row: a room of PCs imaged from the Windows-like disk on the emulated LAN
// (scripts/lab_net.sh: a network namespace per host, every port shaped to --rate each way), the
// real master, fake server and clients as processes, relay mode, every disk checked against
// the manifest (SHA-256 of the whole disk) after every run:
//   deno run -A scripts/bench_bytes_lab.ts [--scale 1] [--pcs 12] [--rate 100mbit] [--runs 3]
// (root). The goal is the issue's: the room imaged in <= 1.15 x S/B, where S is what one PC is
// sent (the image's non-zero chunks as stored, zstd-compressed) and B the port's rate: the
// compressed image moves through the room as fast as it would to one PC. Time: from the fake
// server's registration (every PC booted and waiting) to the last verified disk, by the master's
// clock (as bench:lab).
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseCount, parseRate } from "../imagetools/kit/mod.ts";
import { type Manifest, sliceImage, storedLength } from "../imagetools/mod.ts";
import { buildDisks, type Disk, say } from "./bench_disks.ts";
import { LabNet } from "./lab_net.ts";
import { type LabImage, pcHost, runCascade } from "./lab_scenarios.ts";

const MB = 1e6;

const HELP = `bench:bytes --lab: PCs imaged from the Windows-like disk on the emulated LAN

USAGE
  deno run -A scripts/bench_bytes_lab.ts [options]        (as root)

OPTIONS
  --scale N   the Windows-like disk x N (1: 1 GiB; the issue's disk is 4 GiB: --scale 4)
  --pcs N     PCs in the room (default 12)
  --rate R    every port, each way, as tc writes it (default 100mbit)
  --runs N    runs; the median is reported (default 3)
  --dir DIR   where the disk and slices go (default /tmp)
  --pc-dir D  where each run's PC disks go (default: beside the slices): here all PCs write one
              virtual disk (12 x the used bytes: the shared disk, not the LAN, bounds the run);
              /dev/shm gives each PC a disk in memory, as 12 PCs have 12 disks
  --keep      keep the work folder
  -h, --help  this text
`;

/** What one PC is sent: the non-zero chunks as stored (compressed where the manifest says). */
export function sentPerPc(m: Manifest): number {
  let sent = 0;
  for (const [i, c] of m.chunks.entries()) if (!c.zero) sent += storedLength(m, i);
  return sent;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export const LAB_HEAD = [
  "PCs, port rate",
  "sent per PC (S)",
  "S ÷ B",
  "room imaged (median)",
  "÷ S/B",
  "runs (s)",
];

/** The lab rows for the Windows-like disk `disk`: one row, `runs` relay runs of `pcs` PCs. */
export async function labRows(
  disk: Disk,
  dir: string,
  o: { pcs: number; rate: string; runs: number; pcDir?: string; log?: (line: string) => void },
): Promise<{ table: string[][]; notes: string[] }> {
  if (Deno.uid() !== 0) throw new Error("The lab row needs root (network namespaces, tc)");
  const B = parseRate(o.rate, "--rate");
  say("lab: slicing the Windows-like disk");
  const sliced = await sliceImage({ image: disk.path, out: join(dir, "lab.cascade"), force: true });
  const image: LabImage = {
    golden: disk.path,
    slices: sliced.dir,
    manifest: sliced.manifest,
    imageId: sliced.imageId,
  };
  const S = sentPerPc(sliced.manifest);
  const sOverB = S / B;
  const times: number[] = [];
  const notes: string[] = [];
  const net = await LabNet.up({ hosts: pcHost(o.pcs), rate: o.rate });
  const stop = () => {
    console.error("\nbench:bytes: interrupted; taking the lab down");
    void net.down().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  try {
    for (let r = 1; r <= o.runs; r++) {
      say(`lab: ${o.pcs} PCs at ${o.rate}, run ${r} of ${o.runs} (S/B = ${sOverB.toFixed(1)} s)`);
      const runDir = await Deno.makeTempDir({ dir: o.pcDir ?? dir, prefix: `lab-${r}-` });
      const res = await runCascade({
        net,
        image,
        pcs: o.pcs,
        dir: runDir,
        timeout: Math.max(300, 12 * sOverB),
        progress: o.log ? (line) => o.log!(`  lab run ${r}: ${line}`) : undefined,
        // As bench:lab's relay: one chain from the fake server, the seed's server capacity.
        mode: "relay",
        fakeCapacity: 1,
        capacity: 3,
        fanout: 1,
        linger: 2,
      });
      if (res.ok) times.push(res.seconds);
      notes.push(
        res.ok
          ? `run ${r}: ${res.seconds.toFixed(1)} s, ${o.pcs} of ${o.pcs} disks equal the image`
          : `run ${r}: FAILED (not timed): ${res.reason}`,
      );
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
    }
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    await net.down();
  }
  const m = times.length ? median(times) : NaN;
  const table = [[
    `${o.pcs}, ${o.rate}`,
    `${(S / MB).toFixed(1)} MB`,
    `${sOverB.toFixed(1)} s`,
    times.length ? `${m.toFixed(1)} s` : "-",
    times.length ? `${(m / sOverB).toFixed(2)} x` : "-",
    times.map((t) => t.toFixed(1)).join(", ") || "-",
  ]];
  notes.push(
    `${
      sliced.manifest.chunks.filter((c) => !c.zero).length
    } non-zero chunks of ${sliced.manifest.chunks.length}; goal <= 1.15 x S/B: ${
      times.length && m / sOverB <= 1.15 ? "met" : "NOT met"
    }`,
  );
  return { table, notes };
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      scale: { type: "string", default: "1" },
      pcs: { type: "string", default: "12" },
      rate: { type: "string", default: "100mbit" },
      runs: { type: "string", default: "3" },
      dir: { type: "string", default: "/tmp" },
      "pc-dir": { type: "string" },
      keep: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return console.log(HELP);
  const scale = Number(values.scale);
  if (!(scale > 0 && scale <= 16)) throw new RangeError(`Invalid --scale "${values.scale}": 0..16`);
  const pcs = parseCount(values.pcs, "--pcs", 1, 200);
  const runs = parseCount(values.runs, "--runs", 1, 100);
  parseRate(values.rate, "--rate");
  const dir = await Deno.makeTempDir({ dir: values.dir, prefix: "cascade-bench-bytes-lab-" });
  try {
    const [disk] = await buildDisks(dir, scale, ["windows"]);
    const { table, notes } = await labRows(disk, dir, {
      pcs,
      rate: values.rate,
      runs,
      ...(values["pc-dir"] ? { pcDir: values["pc-dir"] } : {}),
      log: (line) => console.error(line),
    });
    console.log(`| ${LAB_HEAD.join(" | ")} |`);
    console.log(`|${LAB_HEAD.map(() => "---").join("|")}|`);
    for (const r of table) console.log(`| ${r.join(" | ")} |`);
    for (const n of notes) console.log(`- ${n}`);
  } finally {
    if (!values.keep) await Deno.remove(dir, { recursive: true });
    else console.error(`bench:bytes: kept "${dir}"`);
  }
}

if (import.meta.main) await main();
