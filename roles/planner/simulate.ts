// The planner's pure core: a discrete-event model of a room imaging itself, driving THE SAME
// Scheduler the master runs. No clock, no I/O: time is a number in an event loop.
//
// The model (simple on purpose; say so when quoting its figures):
// - At time 0 the fake server registers and every PC asks for the image at once.
// - Every port is full duplex at `rate` bytes/s each way (a switched LAN), of which the share
//   `efficiency` is image bytes (headers take the rest): a PC's download never competes with its
//   upload. A server serving k clients splits its uplink k ways.
// - A receiving PC's rate is min(rate, its server's uplink share, diskRate) — with
//   `transferTime` it is size/transferTime instead, whatever the sharing. Rates are recomputed
//   whenever a transfer starts or ends (fluid flow, piecewise constant).
// - Relay mode: while its upstream still receives, a PC runs no faster than it (exact when both
//   start together, as at boot; a little pessimistic for a late joiner that lags far behind). It
//   finishes no earlier than its upstream's finish plus one hop: a relay sends a chunk on as its
//   bytes come (cut-through), holding only the last byte until it verified the chunk, so a hop
//   is `hopExtra` alone and a chain of N PCs at full rate B takes S/B + (N-1)·hopExtra. With
//   `cutThrough: false` (clients before it) a chunk went on only once whole and verified: a hop
//   of δ = chunkSize / its own rate more, S/B + (N-1)·(δ + hopExtra). See
//   roles/master/scheduler.ts for why fan-out 1 is the default.
// - Classic mode: a PC becomes a server (capacity `capacity`) the moment it holds the image
//   (verification time is not modelled). Unicast: the fake server serves every PC at once and
//   nobody re-serves. No failures, no boot time, no control round trips, no server disk reads.
// - Rooms that are not flat: `ports` gives some PCs another port rate (both ways); each PC's
//   probe is its port's rate, so the scheduler makes a slow one a leaf as the master does.
//   `switchOf` puts PCs on switches 1..K joined in a row by uplinks of `uplink` bytes/s each
//   way (the fake server on switch 1); the scheduler is told each PC's switch (the topology
//   file), and a hop that crosses uplinks shares each of them, per direction, with every other
//   hop crossing it the same way. In such a room the PCs register before the fake server (as in
//   bench:lab). The in-run rules (progress reports) are not modelled.
// - Fixed costs (default 0, bench:lab gives what it measured): a PC's bytes start flowing
//   `startup` s after its assignment (the assign message, connection, ticket, first request:
//   its downstream waits too, it runs no faster than it); each relay hop adds `hopExtra` s to
//   the chunk's wire time (verify, write, wake the waiting request); a PC is verified
//   `finishTime` s after its last byte (the read-back of what verify-behind had left,
//   "received", the proof challenge and answer): `end` is when it is verified.
// - A stall (`stall`): the PC at chain position k stops at time `at` for `seconds`; every PC
//   below it stops too until the master sees it (`detect` s: its stall rule) and re-attaches
//   the next one to the stalled PC's upstream (a new connection: `startup` again); the
//   stalled PC itself finishes `seconds` later than without the stall (it is served again at
//   the end, as a leaf). Applied to the flat room's times, so exact only for one chain.
import { type Decision, Scheduler } from "../master/mod.ts";

export type SimMode = "unicast" | "classic" | "relay";
export const SIM_MODES: readonly SimMode[] = ["unicast", "classic", "relay"];

export interface SimulateParams {
  mode: SimMode;
  /** PCs to image. */
  pcs: number;
  /** Image size in bytes. */
  size: number;
  /** Per-port rate in each direction, bytes/s. */
  rate: number;
  /** Share of the port rate that carries image bytes; protocol headers take the rest (default
   * 1; ETHERNET_TCP_EFFICIENCY for TCP over a real Ethernet wire). Not applied to diskRate. */
  efficiency?: number;
  /** Disk write rate, bytes/s (default: unlimited). */
  diskRate?: number;
  /** Clients the fake server serves at once (default 2; unicast: all PCs; relay: at most the
   *  fan-out, as the master caps it). */
  fakeCapacity?: number;
  /** Clients an imaged PC serves at once in classic mode (default 3). */
  capacity?: number;
  /** Clients a relay serves at once in relay mode (default 1: chains). */
  relayFanout?: number;
  /** Chunk size in bytes, for the relay hop delay without cut-through (default 1 MiB). */
  chunkSize?: number;
  /** Relays send a chunk on as it comes (default true, as they do); false: only once whole. */
  cutThrough?: boolean;
  /** Scheduler linger in seconds (default 10). */
  linger?: number;
  /** Fixed seconds per transfer, overriding the rate-based timing (the seed's 20 minutes). */
  transferTime?: number;
  /** PC number (1..pcs) -> its port rate, bytes/s each way, where it is not `rate`. */
  ports?: Record<number, number>;
  /** PC number -> its switch (1..; default 1); the fake server is on switch 1. */
  switchOf?: Record<number, number>;
  /** Each uplink between neighbouring switches, bytes/s each way (default: `rate`). */
  uplink?: number;
  /** The fake server's port, bytes/s each way, where it is faster than the PCs': in relay mode it
   * says so (fake-server --port-rate) and feeds as many chains as the PCs' probes say it carries,
   * up to `fakeCapacity` (default: `rate`, and the fan-out caps it). */
  sourceRate?: number;
  /** Seconds from a PC's assignment to its first byte (default 0). */
  startup?: number;
  /** Seconds each relay hop adds (verify the chunk's end, wake, send; default 0). */
  hopExtra?: number;
  /** Seconds from a PC's last byte to its verified disk (default 0). */
  finishTime?: number;
  /** One PC stalled mid-run (see the model above). */
  stall?: { position: number; at: number; seconds: number; detect: number };
}

export interface PcResult {
  id: string;
  /** When it was assigned its (last) server. */
  start: number;
  /** When it held the whole image, plus `finishTime` (when it is verified). */
  end: number;
  server: string;
}

export interface SimulationResult {
  mode: SimMode;
  /** Seconds until the last PC held the image. */
  finish: number;
  /** PCs imaged over time: a point at 0 and at every time the count changes. */
  timeline: { t: number; imaged: number }[];
  perPc: PcResult[];
  /** The PC `stall` stopped, when one was. */
  stalled?: string;
}

export const FAKE_ID = "fake";

/** TCP over Ethernet at MTU 1500: 1448 payload bytes (IP and TCP headers with timestamps take
 * 52) per 1538 bytes of wire time (frame header, FCS, preamble and inter-frame gap take 38). */
export const ETHERNET_TCP_EFFICIENCY = 1448 / 1538;

interface Pc {
  id: string;
  state: "waiting" | "receiving" | "draining" | "done";
  server: string;
  start: number;
  /** Bytes received. */
  got: number;
  /** Current rate (bytes/s), and the rate cap with the upstream's limit left out. */
  rate: number;
  cap: number;
  /** When the bytes were all in (draining), and when it completes (once its upstream has). */
  fluidEnd: number;
  completeAt: number;
  end: number;
  /** Order of assignment: upstreams always come before their downstream. */
  order: number;
}

function checkParams(p: SimulateParams) {
  const need = (ok: boolean, what: string, v: unknown, rule: string) => {
    if (!ok) throw new RangeError(`Invalid ${what} "${v}": ${rule}`);
  };
  const whole = (v: number | undefined, what: string, min: number) =>
    need(
      v === undefined || (Number.isInteger(v) && v >= min),
      what,
      v,
      `must be a whole number >= ${min}`,
    );
  const positive = (v: number | undefined, what: string) =>
    need(v === undefined || v > 0, what, v, "must be > 0");
  if (!SIM_MODES.includes(p.mode)) {
    throw new TypeError(`Invalid mode "${p.mode}": expected one of ${SIM_MODES.join(", ")}`);
  }
  whole(p.pcs, "PC count", 0);
  positive(p.size, "image size");
  positive(p.rate, "port rate");
  need(
    p.efficiency === undefined || (p.efficiency > 0 && p.efficiency <= 1),
    "efficiency",
    p.efficiency,
    "must be > 0 and <= 1",
  );
  positive(p.diskRate, "disk rate");
  whole(p.fakeCapacity, "fake server capacity", 1);
  whole(p.capacity, "server capacity", 1);
  whole(p.relayFanout, "relay fan-out", 1);
  positive(p.chunkSize, "chunk size");
  need(p.linger === undefined || p.linger >= 0, "linger", p.linger, "must be >= 0");
  positive(p.transferTime, "transfer time");
  for (const [k, r] of Object.entries(p.ports ?? {})) {
    need(Number(k) >= 1 && Number(k) <= p.pcs && r > 0, "port", `${k}=${r}`, "PC 1..pcs, > 0");
  }
  for (const [k, w] of Object.entries(p.switchOf ?? {})) {
    const ok = Number(k) >= 1 && Number(k) <= p.pcs && Number.isInteger(w) && w >= 1;
    need(ok, "switch", `${k}=${w}`, "PC 1..pcs, switch >= 1");
  }
  positive(p.uplink, "uplink rate");
  positive(p.sourceRate, "source rate");
  for (
    const [what, v] of [["startup", p.startup], ["hop extra", p.hopExtra], [
      "finish time",
      p.finishTime,
    ]] as const
  ) need(v === undefined || v >= 0, what, v, "must be >= 0 seconds");
  if (p.stall) {
    const st = p.stall;
    const ok = Number.isInteger(st.position) && st.position >= 1 && st.at >= 0 &&
      st.seconds >= 0 && st.detect >= 0;
    need(ok, "stall", JSON.stringify(st), "position >= 1, times >= 0");
  }
}

/** Run one mode of the plan to its end. Throws if the room could never finish. */
export function simulate(params: SimulateParams): SimulationResult {
  checkParams(params);
  const { mode, pcs, size } = params;
  const eff = params.efficiency ?? 1;
  // Image bytes a second, each way.
  const portOf = (id: string) =>
    id === FAKE_ID
      ? (params.sourceRate ?? params.rate) * eff
      : (params.ports?.[Number(id.slice(2))] ?? params.rate) * eff;
  const switchOf = (id: string) => id === FAKE_ID ? 1 : params.switchOf?.[Number(id.slice(2))] ?? 1;
  const uplink = (params.uplink ?? params.rate) * eff;
  const hasRoom = params.ports !== undefined || params.switchOf !== undefined ||
    params.sourceRate !== undefined;
  const rated = mode === "relay" && params.sourceRate !== undefined;
  const diskRate = params.diskRate ?? Infinity;
  const chunk = params.chunkSize ?? 1024 * 1024;
  const capacity = params.capacity ?? 3;
  const fanout = params.relayFanout ?? 1;
  const startup = params.startup ?? 0;
  const hopExtra = params.hopExtra ?? 0;
  const hopChunk = params.cutThrough ?? true ? 0 : chunk;
  const sched = new Scheduler({
    linger: params.linger ?? 10,
    mode: mode === "relay" ? "relay" : "classic",
    relayCapacity: fanout,
  });
  const byId = new Map<string, Pc>();
  const all: Pc[] = [];
  let assigned = 0;
  let now = 0;

  const handle = (decisions: Decision[]) => {
    for (const d of decisions) {
      if (d.type === "rejected") {
        throw new Error(`Scheduler rejected ${JSON.stringify(d.event)}: ${d.reason}`);
      }
      if (d.type !== "assign") continue;
      for (const id of d.clients) {
        Object.assign(byId.get(id)!, {
          state: "receiving",
          server: d.server,
          start: d.at,
          got: 0,
          order: assigned++,
        });
      }
    }
  };

  // Unicast: the fake serves everyone at once. Relay: the master caps every server's capacity,
  // the fake's too, at the fan-out (roles/master/core.ts), so this does the same, but for a
  // source that said its port rate (its chains follow from it, up to its capacity).
  const fakeCapacity = mode === "unicast"
    ? Math.max(1, pcs)
    : mode === "relay" && !rated
    ? Math.min(params.fakeCapacity ?? 2, fanout)
    : params.fakeCapacity ?? 2;
  const fakeReady = () =>
    handle(sched.apply({
      type: "server-ready",
      id: FAKE_ID,
      capacity: fakeCapacity,
      kind: "fake",
      at: 0,
      ...(hasRoom ? { switch: "sw1" } : {}),
      ...(rated ? { rate: portOf(FAKE_ID) } : {}),
    }));
  if (!hasRoom) fakeReady();
  for (let i = 1; i <= pcs; i++) {
    const pc: Pc = {
      id: `pc${i}`,
      state: "waiting",
      server: "",
      start: NaN,
      got: 0,
      rate: 0,
      cap: 0,
      fluidEnd: NaN,
      completeAt: Infinity,
      end: NaN,
      order: Infinity,
    };
    byId.set(pc.id, pc);
    all.push(pc);
    handle(sched.apply({
      type: "client-ready",
      id: pc.id,
      at: 0,
      ...(hasRoom ? { probe: portOf(pc.id), switch: `sw${switchOf(pc.id)}` } : {}),
    }));
  }

  if (hasRoom) fakeReady();

  /** Hold back a PC whose bytes are all in until its upstream is complete, then one hop. */
  const scheduleCompletion = (pc: Pc) => {
    const up = byId.get(pc.server);
    if (up && up.state !== "done") return; // its upstream's completion will schedule it
    pc.completeAt = up ? Math.max(pc.fluidEnd, up.end + hopChunk / pc.cap + hopExtra) : pc.fluidEnd;
  };

  let done = 0;
  while (done < pcs) {
    // Rates, upstream before downstream (assignment order guarantees it).
    const receiving = all.filter((p) => p.state === "receiving").sort((a, b) => a.order - b.order);
    const sharing = new Map<string, number>();
    for (const p of receiving) sharing.set(p.server, (sharing.get(p.server) ?? 0) + 1);
    // Hops crossing each uplink per direction: "k>" from switch k to k+1, "k<" back.
    const crossings = (p: Pc) => {
      const a = switchOf(p.server), b = switchOf(p.id);
      const out: string[] = [];
      for (let k = Math.min(a, b); k < Math.max(a, b); k++) out.push(`${k}${a < b ? ">" : "<"}`);
      return out;
    };
    const load = new Map<string, number>();
    for (const p of receiving) for (const u of crossings(p)) load.set(u, (load.get(u) ?? 0) + 1);
    for (const p of receiving) {
      const share = Math.min(Infinity, ...crossings(p).map((u) => uplink / load.get(u)!));
      p.cap = params.transferTime !== undefined ? size / params.transferTime : Math.min(
        portOf(p.id),
        diskRate,
        portOf(p.server) / sharing.get(p.server)!,
        share,
      );
      const up = byId.get(p.server);
      p.rate = now < p.start + startup - 1e-9 * Math.max(1, now)
        ? 0
        : up?.state === "receiving"
        ? Math.min(p.cap, up.rate)
        : p.cap;
    }
    // The next thing to happen: bytes all in, a completion, or a linger deadline.
    let next = sched.nextDeadline() ?? Infinity;
    for (const p of receiving) {
      next = Math.min(next, p.rate > 0 ? now + (size - p.got) / p.rate : Infinity);
      if (now < p.start + startup) next = Math.min(next, p.start + startup);
    }
    for (const p of all) if (p.state === "draining") next = Math.min(next, p.completeAt);
    if (!Number.isFinite(next)) {
      throw new Error(
        `Cannot finish the ${mode} plan: ${pcs - done} of ${pcs} PCs never get a server`,
      );
    }
    const before = now;
    now = next;
    const eps = 1e-9 * Math.max(1, now);
    for (const p of receiving) {
      if (p.rate > 0 && before + (size - p.got) / p.rate <= now + eps) {
        Object.assign(p, { got: size, state: "draining", fluidEnd: now, completeAt: Infinity });
        scheduleCompletion(p);
      } else p.got += p.rate * (now - before);
    }
    // Completions due now, earliest first; each may start transfers and release its downstream.
    for (;;) {
      let pc: Pc | undefined;
      for (const p of all) {
        if (
          p.state === "draining" && p.completeAt <= now + eps &&
          (!pc || p.completeAt < pc.completeAt)
        ) pc = p;
      }
      if (!pc) break;
      Object.assign(pc, { state: "done", end: pc.completeAt });
      done++;
      handle(sched.apply({ type: "client-received", id: pc.id, at: now }));
      if (mode === "classic") {
        handle(sched.apply({ type: "server-ready", id: pc.id, capacity, kind: "server", at: now }));
      }
      for (const p of all) if (p.state === "draining" && p.server === pc.id) scheduleCompletion(p);
    }
    handle(sched.apply({ type: "tick", at: now }));
  }

  const finishTime = params.finishTime ?? 0;
  const perPc = all.map(({ id, start, end, server }) => ({
    id,
    start,
    end: end + finishTime,
    server,
  }));
  const stalled = params.stall ? stallShift(perPc, params.stall, startup) : undefined;
  const ends = perPc.map((p) => p.end).sort((a, b) => a - b);
  const timeline = [{ t: 0, imaged: 0 }];
  ends.forEach((t, i) => {
    const last = timeline[timeline.length - 1];
    if (t - last.t <= 1e-9 * Math.max(1, t)) last.imaged = i + 1;
    else timeline.push({ t, imaged: i + 1 });
  });
  return {
    mode,
    finish: ends.length ? ends[ends.length - 1] : 0,
    timeline,
    perPc,
    ...(stalled ? { stalled } : {}),
  };
}

/** The stall of the model (see the top): the PCs below the stalled one of its chain lose the
 * detection and a new start-up, the stalled one its stall (in place); returns its id. */
function stallShift(
  perPc: PcResult[],
  st: NonNullable<SimulateParams["stall"]>,
  startup: number,
): string | undefined {
  const below = new Map(perPc.map((p) => [p.server, p]));
  let at: PcResult | undefined = below.get(FAKE_ID);
  for (let k = 1; k < st.position && at; k++) at = below.get(at.id);
  if (!at || at.end <= st.at) return undefined;
  at.end += st.seconds;
  for (let p = below.get(at.id); p; p = below.get(p.id)) p.end += st.detect + startup;
  return at.id;
}

/** PCs holding the image at time t (seconds). */
export function imagedAt(result: SimulationResult, t: number): number {
  let n = 0;
  for (const p of result.timeline) if (p.t <= t + 1e-9 * Math.max(1, t)) n = p.imaged;
  return n;
}

/** A round table step: about a dozen rows, in whole seconds, minutes or hours. */
export function autoStep(finish: number): number {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 14400];
  return steps.find((s) => s >= finish / 12) ?? Math.ceil(finish / 12 / 3600) * 3600;
}

/** "20m" on a minute grid, "15s" on a second grid, "0.25s" otherwise. */
function clock(t: number, step: number): string {
  if (step % 60 === 0) return `${t / 60}m`;
  return `${+t.toFixed(3)}s`;
}

/** The timeline as a text table: a row every `step` seconds until every mode has finished. */
export function timelineTable(results: SimulationResult[], step: number): string {
  const last = Math.max(0, ...results.map((r) => r.finish));
  const rows: string[][] = [["time", ...results.map((r) => r.mode)]];
  const count = Math.ceil(last / step - 1e-9);
  for (let i = 0; i <= count; i++) {
    const t = i * step;
    rows.push([clock(t, step), ...results.map((r) => String(imagedAt(r, t)))]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => "  " + row.map((cell, c) => cell.padStart(widths[c])).join("  "))
    .join("\n") + "\n";
}
