// `bench:lab --rooms`: rooms that are not flat (issue 11). Each room is a lab of its own (a
// slow port, two switches joined by an uplink, a flat room where one PC stalls mid-run, a fake
// server on a port faster than the PCs' that says so and feeds several chains), and in
// each Cascade relay and udpcast run interleaved, medians of several runs, every disk checked.
// The slow or stalled PC is shown apart: "others" is the last of the rest.
import { join } from "node:path";
import { formatBytes, parseRate } from "../imagetools/kit/mod.ts";
import { simulate } from "../roles/planner/mod.ts";
import { loadAverage, sampleCpu, startLoad } from "./lab_load.ts";
import { LabNet } from "./lab_net.ts";
import {
  describeRun,
  type LabImage,
  pcHost,
  runCascade,
  type RunResult,
  runUdpcast,
  SERVER_HOST,
} from "./lab_scenarios.ts";

export const ROOMS = ["flat", "stall", "slow", "switches", "fast"] as const;
export type Room = typeof ROOMS[number];

/** The PC on the slow port (in join order it lands anywhere: the master does not know it). */
export const SLOW_PC = 5;
export const SLOW_RATE = "10mbit";
export const UPLINK_RATE = "200mbit";
/** The fake server's port in the fast room (the PCs' stay at --rate). */
export const SOURCE_RATE = "1gbit";
export const STALL_SECONDS = 5;
/** The stalled PC: this many hops below the fake server, once the room holds this share. */
export const STALL_POSITION = 3;
export const STALL_SHARE = 0.35;

export interface RoomConfig {
  pcs: number;
  size: number;
  rate: string;
  runs: number;
  linger: number;
  rooms: Room[];
  /** Another checkout's cascade.ts: its relay runs too, interleaved ("before" rows). */
  compare?: string;
  /** CPU-busy processes beside each run (lab_load.ts), each count its rows (default [0]). */
  loads?: number[];
  /** Each PC's time and servers after every Cascade run (bench:lab -v). */
  verbose?: boolean;
}

/** "before": Cascade relay from the checkout of RoomConfig.compare. */
export type RoomTool = "relay" | "before" | "udpcast";

export interface RoomRun {
  room: Room;
  tool: RoomTool;
  result: RunResult;
  /** Busy processes beside it, the 1-minute load average as it began, CPU s by role. */
  load?: number;
  loadavg?: number;
  cpu?: Record<string, number>;
}

const loadsOf = (c: RoomConfig) => c.loads ?? [0];

/** The tools of a room, in the order they run (and show). */
export const roomTools = (c: { compare?: string }): RoomTool[] =>
  c.compare ? ["relay", "before", "udpcast"] : ["relay", "udpcast"];

/** PCs spread over two switches in no particular order (a fixed shuffle, half on each). */
export function switchPlan(pcs: number): Record<number, number> {
  const order = Array.from({ length: pcs }, (_, i) => i + 1);
  let x = 7;
  for (let i = order.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const j = x % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const plan: Record<number, number> = {};
  order.forEach((k, i) => (plan[pcHost(k)] = i < pcs / 2 ? 1 : 2));
  return plan;
}

const median = (xs: number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** tbf's TCP payload share (bench_lab.ts says why). */
const TBF = 1448 / 1514;

/**
 * The fixed costs of a run in this lab, measured (bench:lab --rooms prints each run's phases;
 * BENCHMARKS.md has the table), for the planner:
 * - startup: from a PC's assignment to its first byte, beyond the chunk's own wire time (the
 *   assign message, the connection and ticket, the first request of a process that just
 *   started: the fake server's first chunk);
 * - hopExtra: what each relay hop adds with cut-through (verify the chunk's end, wake the
 *   waiting request, send on);
 * - finishTime: from the last PC's last byte to its verified disk (read-back of what
 *   verify-behind left, "received", the proof);
 * - detect: how long the master takes to see a stall (adapt.ts: its stall rule's 1 s plus
 *   half a progress period on average).
 */
// Quiet machine, flat room, cut-through, SHA-256 alone (BENCHMARKS.md, "The fixed costs"): the
// head's first chunk 0.16 s after its assignment (0.09 of it the chunk's wire time), the last
// of 12 PCs' 0.22 s, its last byte to verified 0.05 s.
export const LAB_FIXED = { startup: 0.07, hopExtra: 0.005, finishTime: 0.05, detect: 1.25 };

/** The planner's relay figures for a room: the last of the others and the PC apart. */
export function predictRoom(room: Room, c: RoomConfig): { others: number; apart: number | null } {
  const rate = parseRate(c.rate, "--rate");
  const sOverB = c.size / rate;
  const plan = simulate({
    startup: LAB_FIXED.startup,
    hopExtra: LAB_FIXED.hopExtra,
    finishTime: LAB_FIXED.finishTime,
    ...(room === "stall"
      ? {
        stall: {
          position: STALL_POSITION,
          at: STALL_SHARE * sOverB,
          seconds: STALL_SECONDS,
          detect: LAB_FIXED.detect,
        },
      }
      : {}),
    mode: "relay",
    pcs: c.pcs,
    size: c.size,
    rate,
    efficiency: TBF,
    fakeCapacity: 1,
    relayFanout: 1,
    linger: c.linger,
    ...(room === "slow" ? { ports: { [SLOW_PC]: parseRate(SLOW_RATE, "slow") } } : {}),
    ...(room === "switches"
      ? {
        switchOf: Object.fromEntries(
          Object.entries(switchPlan(c.pcs)).map(([h, k]) => [Number(h) - pcHost(0), k]),
        ),
        uplink: parseRate(UPLINK_RATE, "uplink"),
      }
      : {}),
    ...(room === "fast"
      ? { sourceRate: parseRate(SOURCE_RATE, "source rate"), fakeCapacity: c.pcs }
      : {}),
  });
  const apartId = room === "slow" ? `pc${SLOW_PC}` : room === "stall" ? plan.stalled : undefined;
  const slow = plan.perPc.find((p) => p.id === apartId) ?? null;
  const others = Math.max(...plan.perPc.filter((p) => p !== slow).map((p) => p.end));
  return { others, apart: slow?.end ?? null };
}

/** The PC shown apart in a run of this room (slow port, stalled), or undefined. */
function apart(room: Room, r: RunResult): string | undefined {
  if (room === "slow") return `pc${SLOW_PC}`;
  if (room === "stall") return r.stalled;
  return undefined;
}

/** Seconds until the last PC but the one apart, and the one apart's own seconds. */
export function split(room: Room, r: RunResult): { others: number; apart: number | null } {
  const name = apart(room, r);
  const others = r.pcs.filter((p) => p.name !== name).map((p) => p.seconds ?? NaN);
  const a = r.pcs.find((p) => p.name === name)?.seconds ?? null;
  return { others: Math.max(...others), apart: a };
}

const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");

/** The result table (pure): per room and tool, medians of the good runs. */
export function roomTable(runs: RoomRun[], c: RoomConfig): string {
  const sOverB = c.size / parseRate(c.rate, "--rate");
  const slowSOverB = c.size / parseRate(SLOW_RATE, "slow rate");
  const head = [
    "room",
    "load",
    "tool",
    "ok",
    "others (s)",
    "÷ S/B",
    "PC apart (s)",
    "÷ its S/B",
    "others per run (s)",
    "predicted",
    "measured/predicted",
  ];
  const rows: string[][] = [];
  for (const room of c.rooms) {
    for (const load of loadsOf(c)) {
      for (const tool of roomTools(c)) {
        const mine = runs.filter((r) =>
          r.room === room && r.tool === tool && (r.load ?? 0) === load
        );
        const good = mine.filter((r) => r.result.ok).map((r) => split(room, r.result));
        const others = median(good.map((g) => g.others));
        const a = median(good.map((g) => g.apart).filter((x): x is number => x !== null));
        const own = room === "slow" ? slowSOverB : sOverB;
        rows.push([
          room,
          String(load),
          tool,
          `${good.length}/${mine.length}`,
          f(others),
          f(others / sOverB, 2),
          room === "slow" || room === "stall" ? f(a) : "",
          room === "slow" ? f(a / own, 2) : "",
          good.map((g) => f(g.others)).join(" "),
          tool !== "udpcast" ? `${f(predictRoom(room, c).others)} s` : `${f(sOverB)} s (S/B)`,
          f(others / (tool !== "udpcast" ? predictRoom(room, c).others : sOverB), 2),
        ]);
      }
    }
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((x, i) => (i === 0 || i === 2 || i === 8 ? x.padEnd(w[i]) : x.padStart(w[i]))).join("  ")
      .trimEnd();
  return [line(head), line(w.map((n) => "-".repeat(n))), ...rows.map(line)].join("\n");
}

/** Where each room's CPU went (pure): per room, load and tool, the median CPU s of each role
 * (lab_load.ts) and the load averages the runs began at. */
export function cpuTable(runs: RoomRun[], c: RoomConfig): string {
  const out: string[] = [];
  for (const room of c.rooms) {
    for (const load of loadsOf(c)) {
      for (const tool of roomTools(c)) {
        const mine = runs.filter((r) =>
          r.room === room && r.tool === tool && (r.load ?? 0) === load && r.cpu
        );
        if (!mine.length) continue;
        const roles = [...new Set(mine.flatMap((r) => Object.keys(r.cpu!)))].sort();
        const parts = roles.map((role) =>
          `${role} ${f(median(mine.map((r) => r.cpu![role] ?? 0)))}`
        );
        const avgs = mine.map((r) => f(r.loadavg ?? NaN)).join(" ");
        out.push(`  ${room} load ${load} ${tool} (load avg ${avgs}): ${parts.join(", ")}`);
      }
    }
  }
  return out.join("\n");
}

/** The stall's cost: how much later the others finished than in the flat room, per tool. */
export function stallCost(runs: RoomRun[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tool of ["relay", "before", "udpcast"]) {
    const m = (room: Room) =>
      median(
        runs.filter((r) => r.room === room && r.tool === tool && r.result.ok && !r.load)
          .map((r) => split(room, r.result).others),
      );
    out[tool] = m("stall") - m("flat");
  }
  return out;
}

interface Lab {
  rooms: Room[];
  net: () => Promise<LabNet>;
  topology?: (net: LabNet) => string;
  /** The fake server's capacity and extra flags, where not 1 and none. */
  fake?: { capacity: number; args: string[] };
}

/** Run every room: one lab per room kind (flat and stall share one), runs interleaved. */
export async function runRooms(
  c: RoomConfig,
  image: LabImage,
  dir: string,
  say: (line: string) => void,
): Promise<RoomRun[]> {
  const hosts = pcHost(c.pcs);
  const labs: Lab[] = [
    {
      rooms: c.rooms.filter((r) => r === "flat" || r === "stall"),
      net: () => LabNet.up({ hosts, rate: c.rate }),
    },
    {
      rooms: c.rooms.filter((r) => r === "slow"),
      net: () => LabNet.up({ hosts, rate: c.rate, ports: { [pcHost(SLOW_PC)]: SLOW_RATE } }),
    },
    {
      rooms: c.rooms.filter((r) => r === "switches"),
      net: () =>
        LabNet.up({
          hosts,
          rate: c.rate,
          switchOf: { ...switchPlan(c.pcs), 1: 1, [SERVER_HOST]: 1 },
          uplink: UPLINK_RATE,
        }),
      topology: (net) => net.topology(),
    },
    {
      rooms: c.rooms.filter((r) => r === "fast"),
      net: () => LabNet.up({ hosts, rate: c.rate, ports: { [SERVER_HOST]: SOURCE_RATE } }),
      // It says its port's rate and may serve every PC at once: its chains follow from the
      // PCs' probes (roles/master/scheduler_pick.ts).
      fake: { capacity: c.pcs, args: ["--port-rate", SOURCE_RATE] },
    },
  ];
  const sOverB = c.size / parseRate(c.rate, "--rate");
  const out: RoomRun[] = [];
  for (const lab of labs.filter((l) => l.rooms.length)) {
    const net = await lab.net();
    say(`lab ${net.prefix} up for ${lab.rooms.join(", ")}`);
    try {
      for (let run = 1; run <= c.runs; run++) {
        for (const room of lab.rooms) {
          for (
            const [load, tool] of loadsOf(c).flatMap((l) =>
              roomTools(c).map((t) => [l, t] as const)
            )
          ) {
            const label = `${room}/${tool}${load ? ` load ${load}` : ""} ${run}/${c.runs}`;
            const stall = room === "stall"
              ? {
                seconds: STALL_SECONDS,
                atShare: STALL_SHARE,
                chainPosition: STALL_POSITION,
                pc: STALL_POSITION,
              }
              : undefined;
            const common = {
              net,
              image,
              pcs: c.pcs,
              dir: join(dir, `${room}-${tool}-${run}${load ? `-load${load}` : ""}`),
              timeout: room === "slow" ? 300 : 120,
              progress: (line: string) => say(`  ${label} ${line}`),
              ...(stall ? { stall } : {}),
            };
            const busy = startLoad(load);
            const loadavg = await loadAverage();
            const cpuOf = sampleCpu(busy.pids);
            const result = await (tool === "udpcast" ? runUdpcast(common) : runCascade({
              ...common,
              mode: "relay",
              fakeCapacity: lab.fake?.capacity ?? 1,
              ...(lab.fake ? { fakeArgs: lab.fake.args } : {}),
              capacity: 3,
              fanout: 1,
              linger: c.linger,
              ...(tool === "before" ? { cascade: c.compare } : {}),
              ...(lab.topology ? { topology: lab.topology(net) } : {}),
            })).finally(() => busy.stop());
            const cpu = await cpuOf.stop();
            out.push({ room, tool, result, load, loadavg, cpu });
            if (!result.ok) say(`${label}: FAILED: ${result.reason}`);
            else {
              const s = split(room, result);
              say(
                `${label}: others ${f(s.others)} s (${f(s.others / sOverB, 2)} × S/B)` +
                  (s.apart !== null ? `, ${apart(room, result)} ${f(s.apart)} s` : "") +
                  ", every disk verified",
              );
            }
            if (c.verbose && tool !== "udpcast") say(describeRun(result));
          }
        }
      }
    } finally {
      await net.down();
    }
  }
  return out;
}

export function roomsHeader(c: RoomConfig): string {
  const sOverB = c.size / parseRate(c.rate, "--rate");
  return `${c.pcs} PCs, ${formatBytes(c.size)} random image, ${c.rate} ports (S/B = ${
    sOverB.toFixed(1)
  } s); slow: pc${SLOW_PC} at ${SLOW_RATE}; switches: ${c.pcs / 2} + ${
    c.pcs / 2
  } PCs, ${UPLINK_RATE} uplink; fast: the fake server's port at ${SOURCE_RATE}; stall: PC ${STALL_POSITION} of the chain (udpcast: pc${STALL_POSITION}) stopped ${STALL_SECONDS} s at ${
    STALL_SHARE * 100
  } %${c.compare ? `; before: the relay of ${c.compare}` : ""}${
    loadsOf(c).some((n) => n > 0) ? `; load: that many busy processes beside each run` : ""
  }; median of ${c.runs}`;
}
