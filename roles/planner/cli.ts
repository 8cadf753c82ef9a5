// `cascade simulate`: plan a run before booting a room. Drives the master's own Scheduler through
// the discrete-event model in simulate.ts and prints PCs imaged over time per mode.
import { type CommandSpec, parseCommand, UsageError } from "../../imagetools/kit/mod.ts";
import {
  formatBytes,
  formatDuration,
  parseCount,
  parseDuration,
  parseRate,
  parseSize,
} from "../../imagetools/kit/mod.ts";
import {
  autoStep,
  ETHERNET_TCP_EFFICIENCY,
  SIM_MODES,
  type SimMode,
  simulate,
  type SimulateParams,
  type SimulationResult,
  timelineTable,
} from "./simulate.ts";
import { renderSvg } from "./simulate_svg.ts";

export const simulateSpec: CommandSpec = {
  name: "simulate",
  summary: "plan a run: PCs imaged over time in classic and relay mode",
  usage: "[options]",
  options: {
    pcs: { type: "string", arg: "N", help: "PCs to image", default: "20" },
    size: { type: "string", arg: "SIZE", help: "Image size (e.g. 6GB, 256MiB)", default: "6GB" },
    rate: {
      type: "string",
      arg: "RATE",
      help: "Per-port rate in each direction (switched, full duplex)",
      default: "100mbit",
    },
    efficiency: {
      type: "string",
      arg: "SHARE",
      help: "Share of the port rate that is image bytes (TCP/IP over Ethernet, MTU 1500: 0.94)",
      default: ETHERNET_TCP_EFFICIENCY.toFixed(4),
    },
    "disk-rate": {
      type: "string",
      arg: "RATE",
      help: "Disk write rate, e.g. 20MB/s (default: unlimited)",
    },
    mode: {
      type: "string",
      arg: "MODE",
      help: "classic, relay, unicast, both (classic,relay), all, or a comma list",
      default: "both",
    },
    "fake-capacity": {
      type: "string",
      arg: "N",
      help: "Clients the fake server serves at once (unicast: all PCs; relay: at most the fan-out)",
      default: "2",
    },
    capacity: {
      type: "string",
      arg: "N",
      help: "Clients an imaged PC serves at once in classic mode",
      default: "3",
    },
    "relay-fanout": {
      type: "string",
      arg: "N",
      help: "Clients a relay serves at once (1 = a chain, best on switched ports)",
      default: "1",
    },
    "chunk-size": {
      type: "string",
      arg: "SIZE",
      help: "Chunk size; a relay hop lags one chunk",
      default: "1MiB",
    },
    linger: {
      type: "string",
      arg: "DURATION",
      help: "How long a short batch waits before it goes out partial",
      default: "10s",
    },
    "transfer-time": {
      type: "string",
      arg: "DURATION",
      help: "Fixed time per transfer (e.g. the seed's 20m), instead of rate-based timing",
    },
    startup: {
      type: "string",
      arg: "DURATION",
      help: "From a PC's assignment to its first byte (bench:lab measures 0.3s)",
      default: "0s",
    },
    "hop-extra": {
      type: "string",
      arg: "DURATION",
      help: "What each relay hop adds (verify the chunk's end, wake, send)",
      default: "0s",
    },
    "whole-chunk-hops": {
      type: "boolean",
      help:
        "Relays send a chunk on only once whole (clients before cut-through): a chunk's time per hop more",
    },
    "finish-time": {
      type: "string",
      arg: "DURATION",
      help: "From a PC's last byte to its verified disk (read-back, proof)",
      default: "0s",
    },
    step: {
      type: "string",
      arg: "DURATION",
      help: "Timeline row interval (default: the transfer time, or about 12 rows)",
    },
    svg: { type: "string", arg: "FILE", help: "Also draw PCs imaged over time as an SVG chart" },
    json: { type: "boolean", help: "Print parameters and results (per PC too) as JSON" },
  },
  notes: [
    "Model: every PC boots at once; a server's uplink is shared by the clients it serves; a",
    "client runs at min(port, its share, disk); a relay runs no faster than its upstream and",
    "finishes one hop after it (--hop-extra: relays send chunks on as they come). No failures",
    "or boot time; the fixed costs of a run (--startup, --hop-extra, --finish-time) are 0",
    "unless given (BENCHMARKS.md: the lab's).",
    "",
    "Example (the seed's table): cascade simulate --mode classic --pcs 682 --transfer-time 20m",
  ],
};

/** A share in (0, 1], e.g. "0.94". */
function parseShare(text: string, what: string): number {
  const v = Number(text);
  if (!/^\d*\.?\d+$/.test(text.trim()) || !(v > 0 && v <= 1)) {
    throw new RangeError(`Invalid ${what} "${text}": expected a number above 0 and at most 1`);
  }
  return v;
}

/** Turn a bad value into a usage error (exit 2) naming the flag. */
function flag<T>(name: string, value: string, parse: (v: string, what: string) => T): T {
  try {
    return parse(value, `--${name}`);
  } catch (cause) {
    throw new UsageError((cause as Error).message, { cause });
  }
}

export function parseModes(text: string): SimMode[] {
  const names = text === "both"
    ? ["classic", "relay"]
    : text === "all"
    ? [...SIM_MODES]
    : text.split(",").map((m) => m.trim());
  for (const m of names) {
    if (!SIM_MODES.includes(m as SimMode)) {
      throw new UsageError(
        `Invalid --mode "${text}": expected classic, relay, unicast, both, all or a comma list`,
      );
    }
  }
  return names as SimMode[];
}

const mbit = (bytesPerSecond: number) => `${+(bytesPerSecond * 8 / 1e6).toFixed(2)} Mbit/s`;

/** The two lines saying what was assumed. */
export function describePlan(p: Omit<SimulateParams, "mode">): string {
  const fake = p.fakeCapacity ?? 2;
  const fanout = p.relayFanout ?? 1;
  const relayFake = Math.min(fake, fanout);
  const transfer = p.transferTime !== undefined
    ? `every transfer takes ${formatDuration(p.transferTime)} (fixed)`
    : `ports ${mbit(p.rate)} each way (${+((p.efficiency ?? 1) * 100).toFixed(
      1,
    )} % of it image bytes), disk ${p.diskRate === undefined ? "unlimited" : mbit(p.diskRate)}`;
  return [
    `Plan: ${p.pcs} PCs, image ${formatBytes(p.size)}, ${transfer}, chunk ${
      formatBytes(p.chunkSize ?? 1024 * 1024)
    }`,
    `fake server ${fake} at a time${relayFake < fake ? ` (${relayFake} in relay mode)` : ""}, ` +
    `servers ${p.capacity ?? 3} at a time, relay fan-out ${fanout}, ` +
    `linger ${formatDuration(p.linger ?? 10)}`,
    ...(p.startup || p.hopExtra || p.finishTime
      ? [
        `fixed costs: start-up ${p.startup ?? 0} s, ${p.hopExtra ?? 0} s per relay hop, ` +
        `${p.finishTime ?? 0} s from last byte to verified`,
      ]
      : []),
  ].join("\n") + "\n";
}

export function finishLines(results: SimulationResult[]): string {
  const width = Math.max(...results.map((r) => r.mode.length));
  return [
    "finish:",
    ...results.map((r) =>
      `  ${r.mode.padEnd(width)}  ${formatDuration(r.finish)} (${r.finish.toFixed(1)} s)`
    ),
  ].join("\n") + "\n";
}

export async function simulateMain(args: string[]): Promise<number> {
  const parsed = parseCommand(simulateSpec, args);
  if (!parsed) return 0;
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const str = (name: string) => v[name] as string | undefined;
  const base: Omit<SimulateParams, "mode"> = {
    pcs: flag("pcs", str("pcs")!, (t, w) => parseCount(t, w, 0, 1_000_000)),
    size: flag("size", str("size")!, parseSize),
    rate: flag("rate", str("rate")!, parseRate),
    efficiency: flag("efficiency", str("efficiency")!, parseShare),
    diskRate: str("disk-rate") === undefined
      ? undefined
      : flag("disk-rate", str("disk-rate")!, parseRate),
    fakeCapacity: flag("fake-capacity", str("fake-capacity")!, (t, w) => parseCount(t, w, 1)),
    capacity: flag("capacity", str("capacity")!, (t, w) => parseCount(t, w, 1)),
    relayFanout: flag("relay-fanout", str("relay-fanout")!, (t, w) => parseCount(t, w, 1)),
    chunkSize: flag("chunk-size", str("chunk-size")!, parseSize),
    linger: flag("linger", str("linger")!, parseDuration),
    transferTime: str("transfer-time") === undefined
      ? undefined
      : flag("transfer-time", str("transfer-time")!, parseDuration),
    startup: flag("startup", str("startup")!, parseDuration),
    hopExtra: flag("hop-extra", str("hop-extra")!, parseDuration),
    finishTime: flag("finish-time", str("finish-time")!, parseDuration),
    cutThrough: v["whole-chunk-hops"] !== true,
  };
  const modes = parseModes(str("mode")!);
  let step = str("step") === undefined ? undefined : flag("step", str("step")!, parseDuration);
  if (step !== undefined && step <= 0) {
    throw new UsageError(`Invalid --step "${str("step")}": must be > 0`);
  }
  const results = modes.map((mode) => {
    try {
      return simulate({ ...base, mode });
    } catch (cause) {
      if (cause instanceof RangeError || cause instanceof TypeError) {
        throw new UsageError((cause as Error).message, { cause });
      }
      throw cause;
    }
  });
  const svg = str("svg");
  if (svg) {
    await Deno.writeTextFile(
      svg,
      renderSvg(results, { title: `${base.pcs} PCs, ${formatBytes(base.size)} image` }),
    );
    console.error(`simulate: wrote the chart to ${svg}`);
  }
  if (v.json) {
    console.log(JSON.stringify({ params: base, results }, null, 2));
    return 0;
  }
  step ??= base.transferTime ?? autoStep(Math.max(0, ...results.map((r) => r.finish)));
  console.log(
    [describePlan(base), timelineTable(results, step), finishLines(results)].join("\n").trimEnd(),
  );
  return 0;
}
