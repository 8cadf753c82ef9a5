// `deno task bench:lab`: image N PCs on an emulated switched LAN (scripts/lab_net.sh) with every
// PC pulling from the fake server alone (unicast), the seed's classic cascade, relay mode and
// udpcast; median wall time of several runs each, against S/B and the planner's prediction.
// Root only (network namespaces). Scenarios run interleaved (round 1: all, round 2: all, ...)
// so a change in the machine's load hits them alike.
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  formatBytes,
  parseCount,
  parseDuration,
  parseRate,
  parseSize,
} from "../imagetools/kit/mod.ts";
import { simulate } from "../roles/planner/mod.ts";
import { LabNet } from "./lab_net.ts";
import { phaseTable, readRun } from "./lab_phases.ts";
import {
  cpuTable,
  type Room,
  ROOMS,
  roomsHeader,
  roomTable,
  runRooms,
  stallCost,
} from "./lab_rooms.ts";
import {
  describeRun,
  type LabImage,
  makeRandomImage,
  pcHost,
  runCascade,
  type RunResult,
  runUdpcast,
  type Scenario,
  SCENARIOS,
} from "./lab_scenarios.ts";

const HELP = `bench:lab: unicast, classic, relay and udpcast on an emulated switched LAN

USAGE:
  deno run -A scripts/bench_lab.ts [options]        (as root)

OPTIONS:
  --pcs N             PCs to image (default 12); the master and the fake server get hosts of their own
  --size SIZE         Random golden image (default 256MiB)
  --rate RATE         Every port, each way, as tc writes it (default 100mbit)
  --runs N            Runs per scenario; the median is reported (default 3)
  --only LIST         Scenarios, comma separated: ${SCENARIOS.join(",")} (default all).
                      A variant adds options after colons and is a row of its own:
                      relay:inflight=1, relay:cascade=/other/checkout/cascade.ts,
                      udpcast:bitrate=95m
  --rooms LIST        Instead: rooms that are not flat, Cascade relay against udpcast in each:
                      ${ROOMS.join(",")} (flat and stall share a lab; slow: one PC's port at
                      10mbit; switches: PCs over two switches and a 200mbit uplink, the master
                      told with --topology; fast: the fake server's port at 1gbit, told
                      with --port-rate); the slow or stalled PC is shown apart
  --compare PATH      With --rooms: also run the relay of the checkout whose cascade.ts is PATH
                      in every room, interleaved (the "before" rows: before/after in one run)
  --load LIST         With --rooms: CPU-busy processes (a spinning sh each) beside every run,
                      relay's and udpcast's alike, started and ended by bench:lab; each count,
                      comma separated (e.g. 0,1,2), is a row of its own, interleaved (default 0).
                      A table of each room's CPU by process role follows
  --chunk-size SIZE   Chunk size of the slices (default 1MiB)
  --linger S          Master's linger, also given to the planner (default 2)
  --fanout N          Relay fan-out (default 1: a chain)
  --inflight N        Client's chunk requests in flight (default: the client's own)
  --udp-bitrate R     udp-sender --max-bitrate (default: none)
  --keep              Keep the work folder (logs and status of every run; disks are always
                      removed once checked) and print its path
  -v, --verbose       Per-PC times and servers after every Cascade run
  -h, --help          Show this help

Environment: CASCADE_LAB_PROFILE=DIR makes every Cascade client write its V8 CPU profile into DIR
(deno --cpu-prof, at its exit); scripts/profile_top.ts names where the time went.

Wall time: Cascade runs from the fake server's registration (every PC booted and waiting) to the
last PC's verified disk, by the master's clock; udpcast from udp-sender's start (every receiver
waiting) to the last receiver's exit. Every disk is checked against the golden image (SHA-256)
after every run; a run with any wrong disk is reported as failed and not timed.
Unicast is master --mode classic with fake-server --capacity N: every PC pulls from the fake
server at once, real Cascade clients, nobody re-serves (all are imaged by the same server).`;

/** A row of the table: a scenario and its options ("relay:inflight=1"). */
export interface Variant {
  label: string;
  scenario: Scenario;
  inflight?: number;
  cascade?: string;
  bitrate?: string;
}

/** Parse "relay:inflight=1:cascade=PATH" (pure). */
export function parseVariant(text: string): Variant {
  const [name, ...opts] = text.split(":");
  if (!SCENARIOS.includes(name as Scenario)) {
    throw new TypeError(`Invalid --only "${text}": expected one of ${SCENARIOS.join(", ")}`);
  }
  const v: Variant = { label: text, scenario: name as Scenario };
  for (const opt of opts) {
    const [key, value = ""] = opt.split(/=(.*)/s);
    if (key === "inflight" && name !== "udpcast") v.inflight = parseCount(value, "inflight", 1, 64);
    else if (key === "cascade" && name !== "udpcast" && value) v.cascade = value;
    else if (key === "bitrate" && name === "udpcast" && value) v.bitrate = value;
    else throw new TypeError(`Invalid --only "${text}": unknown option "${opt}" for ${name}`);
  }
  return v;
}

export interface ScenarioSummary {
  label: string;
  scenario: Scenario;
  /** Seconds of the runs that succeeded. */
  times: number[];
  failed: number;
  /** The planner's figure (or S/B for udpcast, which it does not model). */
  predicted: number;
  predictedBy: "planner" | "S/B";
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : "-");

/** The result table (pure). */
export function renderTable(rows: ScenarioSummary[], sOverB: number): string {
  const head = [
    "scenario",
    "ok runs",
    "median",
    "÷ S/B",
    "predicted",
    "measured/predicted",
    "runs (s)",
  ];
  const cells = rows.map((r) => {
    const m = median(r.times);
    return [
      r.label,
      `${r.times.length}/${r.times.length + r.failed}`,
      `${fmt(m)} s`,
      fmt(m / sOverB, 2),
      `${fmt(r.predicted)} s${r.predictedBy === "S/B" ? " (S/B)" : ""}`,
      fmt(m / r.predicted, 2),
      r.times.map((t) => fmt(t)).join(" ") || "-",
    ];
  });
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c.map((x, i) => (i === 0 || i === 6 ? x.padEnd(w[i]) : x.padStart(w[i]))).join("  ")
      .trimEnd();
  return [line(head), line(w.map((n) => "-".repeat(n))), ...cells.map(line)].join("\n");
}

interface Config {
  pcs: number;
  size: number;
  rate: string;
  rateBytes: number;
  runs: number;
  only: Variant[];
  chunkSize: number;
  linger: number;
  fanout: number;
  inflight?: number;
  udpBitrate?: string;
  keep: boolean;
  verbose: boolean;
  rooms?: Room[];
  compare?: string;
  loads: number[];
}

function parseRooms(text: string): Room[] {
  const rooms = text.split(",").map((s) => s.trim()).filter(Boolean);
  for (const r of rooms) {
    if (!ROOMS.includes(r as Room)) {
      throw new TypeError(`Invalid --rooms "${text}": expected some of ${ROOMS.join(", ")}`);
    }
  }
  return rooms as Room[];
}

function parseConfig(args: string[]): Config | null {
  const { values: v } = parseArgs({
    args,
    options: {
      pcs: { type: "string", default: "12" },
      size: { type: "string", default: "256MiB" },
      rate: { type: "string", default: "100mbit" },
      runs: { type: "string", default: "3" },
      only: { type: "string", default: SCENARIOS.join(",") },
      "chunk-size": { type: "string", default: "1MiB" },
      linger: { type: "string", default: "2" },
      fanout: { type: "string", default: "1" },
      inflight: { type: "string" },
      "udp-bitrate": { type: "string" },
      keep: { type: "boolean", default: false },
      rooms: { type: "string" },
      compare: { type: "string" },
      load: { type: "string", default: "0" },
      verbose: { type: "boolean", short: "v", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (v.help) {
    console.log(HELP);
    return null;
  }
  if (!/^\d+(\.\d+)?[kmg]?bit$/.test(v.rate)) {
    throw new TypeError(`Invalid --rate "${v.rate}": expected a tc rate such as 100mbit`);
  }
  const only = v.only.split(",").map((s) => s.trim()).filter(Boolean).map(parseVariant);
  if (new Set(only.map((o) => o.label)).size !== only.length) {
    throw new TypeError(`Invalid --only "${v.only}": a scenario is listed twice`);
  }
  return {
    pcs: parseCount(v.pcs, "--pcs", 1, 200),
    size: parseSize(v.size, "--size"),
    rate: v.rate,
    rateBytes: parseRate(v.rate, "--rate"),
    runs: parseCount(v.runs, "--runs", 1, 100),
    only,
    chunkSize: parseSize(v["chunk-size"], "--chunk-size"),
    linger: parseDuration(v.linger, "--linger"),
    fanout: parseCount(v.fanout, "--fanout", 1, 64),
    ...(v.inflight ? { inflight: parseCount(v.inflight, "--inflight", 1, 64) } : {}),
    ...(v["udp-bitrate"] ? { udpBitrate: v["udp-bitrate"] } : {}),
    keep: v.keep,
    verbose: v.verbose,
    ...(v.rooms !== undefined ? { rooms: parseRooms(v.rooms) } : {}),
    ...(v.compare ? { compare: v.compare } : {}),
    loads: v.load.split(",").map((n) => parseCount(n, "--load", 0, 16)),
  };
}

/** Fake server and server capacities per Cascade scenario (the seed's for classic). */
function capacities(s: Scenario, c: Config) {
  if (s === "unicast") return { fakeCapacity: c.pcs, capacity: 3 };
  if (s === "relay") return { fakeCapacity: c.fanout, capacity: 3 };
  return { fakeCapacity: 2, capacity: 3 };
}

/** tbf counts a frame from its Ethernet header on: 1514 bytes for 1448 of TCP payload (no
 * preamble, FCS or gap on a veth, unlike ETHERNET_TCP_EFFICIENCY's real wire). */
export const TBF_TCP_EFFICIENCY = 1448 / 1514;

export function prediction(s: Scenario, c: Config): number {
  if (s === "udpcast") return c.size / c.rateBytes;
  return simulate({
    mode: s,
    pcs: c.pcs,
    size: c.size,
    rate: c.rateBytes,
    efficiency: TBF_TCP_EFFICIENCY,
    ...capacities(s, c),
    relayFanout: c.fanout,
    chunkSize: c.chunkSize,
    linger: c.linger,
  }).finish;
}

/** Free bytes on the file system holding `dir` (df: Deno has no statfs). */
async function freeBytes(dir: string): Promise<number> {
  const out = await new Deno.Command("df", { args: ["--output=avail", "-B1", dir] }).output();
  const n = Number(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1));
  if (!out.success || !Number.isFinite(n)) {
    throw new Error(`Cannot read the free space of "${dir}"`);
  }
  return n;
}

async function main(args: string[]): Promise<number> {
  const c = parseConfig(args);
  if (!c) return 0;
  if (Deno.uid() !== 0) {
    console.error("bench:lab: needs root (network namespaces, tc)");
    return 2;
  }
  const sOverB = c.size / c.rateBytes;
  const dir = await Deno.makeTempDir({ prefix: "cascade-bench-lab-" });
  // The golden image, its slices and one run's disks must fit, with room to spare.
  const need = (c.pcs + 2) * c.size + (1 << 30);
  const free = await freeBytes(dir);
  if (free < need) {
    await Deno.remove(dir, { recursive: true });
    console.error(
      `bench:lab: needs ${formatBytes(need)} free beside ${dir}, has ${formatBytes(free)}`,
    );
    return 1;
  }
  let net: LabNet | undefined;
  const stop = () => {
    console.error("\nbench:lab: interrupted; taking the lab down");
    void (net?.down() ?? Promise.resolve()).finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  try {
    console.log(
      `bench:lab: ${c.pcs} PCs, ${formatBytes(c.size)} random image, ${c.rate} ports, ` +
        `${c.runs} run(s) of ${c.only.map((o) => o.label).join(", ")}; S/B = ${
          sOverB.toFixed(1)
        } s`,
    );
    const image: LabImage = await makeRandomImage(dir, c.size, c.chunkSize);
    if (c.rooms) {
      const rc = { pcs: c.pcs, size: c.size, rate: c.rate, runs: c.runs, linger: c.linger };
      const config = {
        ...rc,
        rooms: c.rooms,
        loads: c.loads,
        verbose: c.verbose,
        ...(c.compare ? { compare: c.compare } : {}),
      };
      const runs = await runRooms(config, image, dir, (line) => console.log(line));
      console.log(`\n${roomsHeader(config)}:\n`);
      console.log(roomTable(runs, config));
      console.log(`\nCPU s by process role, medians (from /proc, sampled every 0.5 s):`);
      console.log(cpuTable(runs, config));
      // Where each room's relay time goes (the fixed cost of a run, issue 11).
      for (const room of c.rooms) {
        for (const tool of c.compare ? ["relay", "before"] : ["relay"]) {
          const kept = [];
          for (let run = 1; run <= c.runs; run++) {
            const r = await readRun(join(dir, `${room}-${tool}-${run}`)).catch(() => null); // load 0
            if (r?.length) kept.push(r);
          }
          if (!kept.length) continue;
          console.log(
            `\n${room}, ${tool}: phases (s from the fake server's join), ${kept.length} runs:`,
          );
          console.log(phaseTable(kept));
        }
      }
      if (c.rooms.includes("stall") && c.rooms.includes("flat")) {
        const cost = stallCost(runs);
        console.log(
          `\nthe stall's cost to the others (stall - flat, medians): relay ${
            cost.relay.toFixed(1)
          } s, udpcast ${cost.udpcast.toFixed(1)} s${
            c.compare ? `, before ${cost.before.toFixed(1)} s` : ""
          }`,
        );
      }
      return runs.every((r) => r.result.ok) ? 0 : 1;
    }
    net = await LabNet.up({ hosts: pcHost(c.pcs), rate: c.rate });
    console.log(`lab ${net.prefix}: ${net.hosts} namespaces up; work folder ${dir}`);
    const results = new Map<string, RunResult[]>(c.only.map((o) => [o.label, []]));
    for (let run = 1; run <= c.runs; run++) {
      for (const [i, variant] of c.only.entries()) {
        const s = variant.scenario;
        const runDir = join(dir, `${i + 1}-${s}-${run}`);
        const label = `${variant.label} ${run}/${c.runs}`;
        const predicted = prediction(s, c);
        console.log(`${label}: starting (predicted ${predicted.toFixed(1)} s)`);
        const common = {
          net,
          image,
          pcs: c.pcs,
          dir: runDir,
          timeout: Math.max(120, 4 * predicted),
          progress: (line: string) => console.log(`  ${label} ${line}`),
        };
        const r = s === "udpcast"
          ? await runUdpcast({ ...common, maxBitrate: variant.bitrate ?? c.udpBitrate })
          : await runCascade({
            ...common,
            mode: s,
            ...capacities(s, c),
            fanout: c.fanout,
            linger: c.linger,
            inflight: variant.inflight ?? c.inflight,
            cascade: variant.cascade,
          });
        results.get(variant.label)!.push(r);
        console.log(
          r.ok
            ? `${label}: ${r.seconds.toFixed(1)} s (${(r.seconds / sOverB).toFixed(2)} × S/B, ${
              (r.seconds / predicted).toFixed(2)
            } × predicted), every disk verified`
            : `${label}: FAILED: ${r.reason}`,
        );
        if (c.verbose || !r.ok) console.log(describeRun(r));
      }
    }
    const rows: ScenarioSummary[] = c.only.map((o) => ({
      label: o.label,
      scenario: o.scenario,
      times: results.get(o.label)!.filter((r) => r.ok).map((r) => r.seconds),
      failed: results.get(o.label)!.filter((r) => !r.ok).length,
      predicted: prediction(o.scenario, c),
      predictedBy: o.scenario === "udpcast" ? "S/B" : "planner",
    }));
    console.log(
      `\n${c.pcs} PCs, ${formatBytes(c.size)} random image, ${c.rate} ports (S/B = ${
        sOverB.toFixed(1)
      } s), chunk ${formatBytes(c.chunkSize)}, median of ${c.runs}:\n`,
    );
    console.log(renderTable(rows, sOverB));
    const relay = rows.find((r) => r.label === "relay");
    const udp = rows.find((r) => r.label === "udpcast");
    if (relay) {
      const m = median(relay.times);
      console.log(
        `\nrelay ≤ 1.15 × S/B: ${m / sOverB <= 1.15 ? "yes" : "NO"} (${fmt(m / sOverB, 2)})` +
          (udp ? `; relay faster than udpcast: ${m < median(udp.times) ? "yes" : "NO"}` : ""),
      );
    }
    const off = rows.filter((r) => r.predictedBy === "planner" && r.times.length)
      .filter((r) => Math.abs(median(r.times) / r.predicted - 1) > 0.15).map((r) => r.label);
    console.log(
      `planner within 15 %: ${off.length ? `NO for ${off.join(", ")}` : "yes for every scenario"}`,
    );
    return rows.every((r) => r.failed === 0) ? 0 : 1;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    await net?.down();
    if (c.keep) console.log(`work folder kept: ${dir}`);
    else await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
