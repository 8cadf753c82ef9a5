// One imaging run on the emulated LAN (scripts/lab_net.ts): Cascade (unicast, classic, relay) or
// udpcast, timed, with every PC's disk checked against the golden image afterwards.
// Host 1 runs the master, host 2 the fake server (or udp-sender), hosts 3.. the PCs.
import { randomFillSync } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Manifest } from "../imagetools/mod.ts";
import { sliceImage } from "../imagetools/mod.ts";
import { sha256File } from "../roles/demo/mod.ts";
import type { RunStatus } from "../roles/master/mod.ts";
import type { HostProcess, LabNet } from "./lab_net.ts";

const CASCADE = fileURLToPath(new URL("../cascade.ts", import.meta.url));
export const MASTER_HOST = 1;
export const SERVER_HOST = 2;
export const MASTER_PORT = 8080;
/** Host number of PC k (1-based). */
export const pcHost = (k: number) => k + 2;

export type Scenario = "unicast" | "classic" | "relay" | "udpcast";
export const SCENARIOS: readonly Scenario[] = ["unicast", "classic", "relay", "udpcast"];

export interface LabImage {
  golden: string;
  slices: string;
  manifest: Manifest;
  imageId: string;
}

/** A golden image of random bytes (nothing compresses, no zero chunk is skipped), sliced. */
export async function makeRandomImage(
  dir: string,
  size: number,
  chunkSize: number,
): Promise<LabImage> {
  const golden = join(dir, "golden.img");
  const file = await Deno.open(golden, { write: true, create: true, truncate: true });
  try {
    const buf = new Uint8Array(4 << 20);
    for (let done = 0; done < size;) {
      const n = Math.min(buf.length, size - done);
      randomFillSync(buf, 0, n);
      for (let off = 0; off < n;) off += await file.write(buf.subarray(off, n));
      done += n;
    }
  } finally {
    file.close();
  }
  const slices = join(dir, "slices");
  const r = await sliceImage({ image: golden, out: slices, chunkSize, force: true });
  return { golden, slices, manifest: r.manifest, imageId: r.imageId };
}

export interface RunOptions {
  net: LabNet;
  image: LabImage;
  pcs: number;
  /** Folder for this run's disks, logs and status (created). */
  dir: string;
  /** Give up after this many seconds. */
  timeout: number;
  /** A progress line now and then. */
  progress?: (line: string) => void;
  /** Seconds between progress lines (default 5). */
  every?: number;
  /** Keep the PCs' disk files after the run (default: removed once checked; they are big). */
  keepDisks?: boolean;
  /** Stop one PC for `seconds` once the room holds `atShare` of all bytes: Cascade stops the
   * PC `chainPosition` hops below the fake server, udpcast PC `pc`. */
  stall?: { seconds: number; atShare: number; chainPosition: number; pc: number };
}

export interface CascadeOptions extends RunOptions {
  mode: "unicast" | "classic" | "relay";
  fakeCapacity: number;
  capacity: number;
  fanout: number;
  linger: number;
  /** Client's --inflight (default: the client's own default). */
  inflight?: number;
  /** Extra client flags. */
  clientArgs?: string[];
  /** Extra fake-server flags (e.g. --port-rate). */
  fakeArgs?: string[];
  /** The master's --topology file, as text. */
  topology?: string;
  /** The cascade.ts to run (default: this tree's), e.g. a patched checkout to compare. */
  cascade?: string;
}

export interface PcOutcome {
  name: string;
  /** Seconds from the start of the run to its verified disk (null if never). */
  seconds: number | null;
  servedBy: string[];
  failures: number;
  /** Its disk equals the golden image byte for byte. */
  matches: boolean;
}

export interface RunResult {
  ok: boolean;
  /** Seconds from the start to the last PC's verified disk. */
  seconds: number;
  /** Why the run is not timed, when !ok. */
  reason?: string;
  pcs: PcOutcome[];
  /** The PC a stall stopped, when one did. */
  stalled?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function disk(dir: string, k: number) {
  return join(dir, "disks", `pc${k}.img`);
}

async function checkDisks(o: RunOptions): Promise<boolean[]> {
  const out: boolean[] = [];
  for (let k = 1; k <= o.pcs; k++) {
    const h = await sha256File(disk(o.dir, k)).catch(() => "");
    const size = await Deno.stat(disk(o.dir, k)).then((s) => s.size, () => -1);
    out.push(h === o.image.manifest.sha256 && size === o.image.manifest.size);
  }
  return out;
}

/** Wait for a process to exit (bounded), else kill it; returns whether it exited by itself. */
async function settle(p: HostProcess, ms: number): Promise<boolean> {
  const exited = await Promise.race([p.done.then(() => true), sleep(ms).then(() => false)]);
  if (!exited) {
    try {
      p.child.kill("SIGKILL");
    } catch { /* gone meanwhile */ }
    await p.done.catch(() => {});
  }
  return exited;
}

async function prepare(o: RunOptions) {
  await Deno.mkdir(join(o.dir, "disks"), { recursive: true });
  await Deno.mkdir(join(o.dir, "logs"), { recursive: true });
}

async function settleAll(procs: HostProcess[]) {
  for (const p of procs) if (!p.status) await settle(p, 0);
}

/** A run is good only when every PC was imaged and its disk equals the golden image. */
function runResult(pcs: PcOutcome[], seconds: number): RunResult {
  const bad = pcs.filter((p) => !p.matches || p.seconds === null).map((p) => p.name);
  if (bad.length) {
    return { ok: false, seconds, reason: `not imaged or disk wrong: ${bad.join(", ")}`, pcs };
  }
  return { ok: true, seconds, pcs };
}

function failedRun(err: unknown): RunResult {
  return { ok: false, seconds: NaN, reason: (err as Error).message, pcs: [] };
}

async function readLog(path: string): Promise<string> {
  return await Deno.readTextFile(path).catch(() => "");
}

function cascadeCmd(args: string[], cascade = CASCADE): string[] {
  // CASCADE_LAB_PROFILE=DIR: each client's V8 CPU profile, written there at its exit.
  const prof = Deno.env.get("CASCADE_LAB_PROFILE");
  return [
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    ...(prof && args[0] === "client" ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : []),
    cascade,
    ...args,
  ];
}

/** Each PC's time, disk check, failures and servers, a line each (bench:lab -v). */
export function describeRun(r: RunResult): string {
  return r.pcs.map((p) =>
    `    ${p.name.padEnd(5)} ${
      p.seconds === null ? "   -  " : p.seconds.toFixed(1).padStart(6)
    } s  ${p.matches ? "disk ok " : "DISK BAD"}  failures ${p.failures}  served by ${
      p.servedBy.join(" > ")
    }`
  ).join("\n");
}

/** One Cascade run: master, N clients all registered and waiting, then the fake server. Timed
 * by the master's clock from the fake server's registration to the last verified disk. */
export async function runCascade(o: CascadeOptions): Promise<RunResult> {
  const { net, image, pcs } = o;
  const log = (name: string) => join(o.dir, "logs", `${name}.log`);
  const statusFile = join(o.dir, "status.json");
  const url = `http://${net.ip(MASTER_HOST)}:${MASTER_PORT}`;
  const procs: HostProcess[] = [];
  const deadline = performance.now() + o.timeout * 1000;
  const every = (o.every ?? 5) * 1000;
  try {
    await prepare(o);
    if (o.topology) await Deno.writeTextFile(join(o.dir, "room.topology"), o.topology);
    const master = net.spawn(
      MASTER_HOST,
      cascadeCmd([
        "master",
        "--slices",
        image.slices,
        "--host",
        "0.0.0.0",
        "--port",
        String(MASTER_PORT),
        // Unicast is classic mode where the fake server serves every PC at once.
        "--mode",
        o.mode === "unicast" ? "classic" : o.mode,
        "--expect",
        String(pcs),
        "--linger",
        String(o.linger),
        "--fanout",
        String(o.fanout),
        "--status-file",
        statusFile,
        "--no-history",
        ...(o.topology ? ["--topology", join(o.dir, "room.topology")] : []),
      ], o.cascade),
      { log: log("master") },
    );
    procs.push(master);
    await until(async () => /master\.listening/.test(await readLog(log("master"))), "master up");
    for (let k = 1; k <= pcs; k++) {
      procs.push(net.spawn(
        pcHost(k),
        cascadeCmd([
          "client",
          "--master",
          url,
          "--target",
          disk(o.dir, k),
          "--name",
          `pc${k}`,
          "--image-id",
          image.imageId,
          "--capacity",
          String(o.capacity),
          "--quiet",
          ...(o.inflight ? ["--inflight", String(o.inflight)] : []),
          ...(o.clientArgs ?? []),
        ], o.cascade),
        { log: log(`pc${k}`) },
      ));
    }
    // Every PC booted and waiting, as in a lab where the room is switched on first.
    await until(async () => {
      const text = await readLog(log("master"));
      return (text.match(/master\.join .*role=client/g) ?? []).length >= pcs;
    }, `${pcs} clients registered`);
    procs.push(net.spawn(
      SERVER_HOST,
      cascadeCmd([
        "fake-server",
        "--master",
        url,
        "--slices",
        image.slices,
        "--name",
        "fake",
        "--capacity",
        String(o.fakeCapacity),
        ...(o.fakeArgs ?? []),
      ], o.cascade),
      { log: log("fake") },
    ));
    const t0 = performance.now();
    let lastLine = t0;
    let stalled: string | undefined;
    let stall: Promise<void> | undefined;
    while (!master.status) {
      if (performance.now() > deadline) throw new Error(`the run took longer than ${o.timeout} s`);
      await Promise.race([master.done, sleep(o.stall && !stall ? 100 : 250)]);
      if (o.stall && !stall && !master.status) {
        const s = await net.run(MASTER_HOST, ["curl", "-sf", "-m", "2", `${url}/api/v1/status`])
          .then((t) => JSON.parse(t) as RunStatus, () => null);
        const clients = s?.peers.filter((p) => p.role === "client") ?? [];
        const share = clients.reduce((a, p) => a + p.progress, 0) / Math.max(1, pcs);
        if (s && share >= o.stall.atShare) {
          // Walk the chain down from the fake server to the PC at the given position.
          let at = s.peers.find((p) => p.role === "fake")?.id;
          for (let i = 0; i < o.stall.chainPosition && at; i++) {
            at = clients.find((p) => p.server === at && p.state === "receiving")?.id;
          }
          const k = at ? Number(/^pc(\d+)$/.exec(at)?.[1]) : NaN;
          if (Number.isInteger(k)) {
            stalled = `pc${k}`;
            stall = net.stall(pcHost(k), o.stall.seconds);
            o.progress?.(`stalling ${stalled} for ${o.stall.seconds} s`);
          }
        }
      }
      if (o.progress && performance.now() - lastLine >= every && !master.status) {
        lastLine = performance.now();
        const s = await net.run(MASTER_HOST, ["curl", "-sf", "-m", "2", `${url}/api/v1/status`])
          .then((t) => JSON.parse(t) as RunStatus, () => null);
        if (s) {
          const clients = s.peers.filter((p) => p.role === "client");
          const pct = clients.reduce((a, p) => a + p.progress, 0) / Math.max(1, clients.length);
          o.progress(
            `${
              ((performance.now() - t0) / 1000).toFixed(0)
            }s: ${s.totals.verified}/${pcs} verified, ${s.totals.receiving} receiving, ${
              (pct * 100).toFixed(0)
            }% of all bytes`,
          );
        }
      }
    }
    await stall;
    // The peers hear "end" and exit; give them a little while.
    for (const p of procs) await settle(p, 15_000);
    const status = JSON.parse(await Deno.readTextFile(statusFile)) as RunStatus;
    const fake = status.peers.find((p) => p.role === "fake");
    const start = fake?.joinedAt ?? NaN;
    const matches = await checkDisks(o);
    const outcomes: PcOutcome[] = [];
    for (let k = 1; k <= pcs; k++) {
      const peer = status.peers.find((p) => p.role === "client" && p.name === `pc${k}`);
      outcomes.push({
        name: `pc${k}`,
        seconds: peer?.verified && peer.doneAt !== undefined ? peer.doneAt - start : null,
        servedBy: peer?.servedBy ?? [],
        failures: peer?.failures.length ?? 0,
        matches: matches[k - 1],
      });
    }
    if (!Number.isFinite(start)) throw new Error("the fake server never registered");
    if (o.stall && !stalled) throw new Error("no PC was stalled: the chain was not found");
    return {
      ...runResult(outcomes, Math.max(...outcomes.map((p) => p.seconds ?? NaN))),
      ...(stalled ? { stalled } : {}),
    };
  } catch (err) {
    return failedRun(err);
  } finally {
    await settleAll(procs);
    if (!o.keepDisks) await Deno.remove(join(o.dir, "disks"), { recursive: true }).catch(() => {});
  }

  async function until(pred: () => Promise<boolean>, what: string) {
    while (!(await pred())) {
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  }
}

export interface UdpcastOptions extends RunOptions {
  /** udp-sender --max-bitrate, e.g. "95m" (default: none; the sender's socket buffer and the
   * shaped port pace it). */
  maxBitrate?: string;
}

/** One udpcast run: N udp-receivers waiting, then udp-sender multicasting the golden image.
 * Timed from the sender's start to the last receiver's exit (the receivers verify nothing). */
export async function runUdpcast(o: UdpcastOptions): Promise<RunResult> {
  const { net, image, pcs } = o;
  const log = (name: string) => join(o.dir, "logs", `${name}.log`);
  const procs: HostProcess[] = [];
  const receivers: HostProcess[] = [];
  const every = (o.every ?? 5) * 1000;
  try {
    await prepare(o);
    for (let k = 1; k <= pcs; k++) {
      const p = net.spawn(
        pcHost(k),
        ["udp-receiver", "--file", disk(o.dir, k), "--interface", "eth0", "--nokbd"],
        { log: log(`pc${k}`) },
      );
      procs.push(p);
      receivers.push(p);
    }
    // A receiver is ready once it has announced itself (it prints its own address).
    const started = performance.now();
    for (let k = 1; k <= pcs; k++) {
      while (!/Udp-receiver/i.test(await readLog(log(`pc${k}`)))) {
        if (performance.now() - started > 20_000) {
          throw new Error(`udp-receiver ${k} did not start`);
        }
        await sleep(50);
      }
    }
    const t0 = performance.now();
    const sender = net.spawn(SERVER_HOST, [
      "udp-sender",
      "--file",
      image.golden,
      "--interface",
      "eth0",
      "--nokbd",
      "--min-receivers",
      String(pcs),
      ...(o.maxBitrate ? ["--max-bitrate", o.maxBitrate] : []),
    ], { log: log("sender") });
    procs.push(sender);
    const ends = receivers.map(() => NaN);
    receivers.forEach((p, i) => p.child.status.then(() => (ends[i] = performance.now())));
    let lastLine = t0;
    let stall: Promise<void> | undefined;
    while (receivers.some((p) => !p.status)) {
      if (performance.now() - t0 > o.timeout * 1000) {
        throw new Error(`the run took longer than ${o.timeout} s`);
      }
      await sleep(o.stall && !stall ? 100 : 250);
      if (o.stall && !stall) {
        const size = await Deno.stat(disk(o.dir, o.stall.pc)).then((s) => s.size, () => 0);
        if (size >= o.stall.atShare * image.manifest.size) {
          stall = net.stall(pcHost(o.stall.pc), o.stall.seconds);
          o.progress?.(`stalling pc${o.stall.pc} for ${o.stall.seconds} s`);
        }
      }
      if (o.progress && performance.now() - lastLine >= every) {
        lastLine = performance.now();
        let bytes = 0;
        for (let k = 1; k <= pcs; k++) {
          bytes += await Deno.stat(disk(o.dir, k)).then((s) => s.size, () => 0);
        }
        const done = receivers.filter((p) => p.status).length;
        o.progress(
          `${((performance.now() - t0) / 1000).toFixed(0)}s: ${done}/${pcs} done, ${
            (100 * bytes / (pcs * image.manifest.size)).toFixed(0)
          }% of all bytes`,
        );
      }
    }
    await stall;
    await settle(sender, 10_000);
    const matches = await checkDisks(o);
    const outcomes: PcOutcome[] = receivers.map((p, i) => ({
      name: `pc${i + 1}`,
      seconds: p.status?.success ? (ends[i] - t0) / 1000 : null,
      servedBy: ["udp-sender"],
      failures: p.status?.success ? 0 : 1,
      matches: matches[i],
    }));
    return {
      ...runResult(outcomes, (Math.max(...ends) - t0) / 1000),
      ...(stall ? { stalled: `pc${o.stall!.pc}` } : {}),
    };
  } catch (err) {
    return failedRun(err);
  } finally {
    await settleAll(procs);
    if (!o.keepDisks) await Deno.remove(join(o.dir, "disks"), { recursive: true }).catch(() => {});
  }
}
