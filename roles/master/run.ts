// The master process: load the slices' manifest, run the core behind the Hono app on one port,
// tick the scheduler's linger deadlines, and end the run cleanly.
import type { Hono } from "hono";
import { dirname, join } from "node:path";
import { type BuildInfo, createBootApp, parseBuildInfo, serveTftp } from "../../netboot/mod.ts";
import { openSlicesSource } from "../data/mod.ts";
import { sourceProver } from "./prover.ts";
import { loadManifest } from "../../imagetools/mod.ts";
import type { LogFields, Logger } from "../../imagetools/kit/mod.ts";
import { MasterCore } from "./core.ts";
import { httpUrl } from "./listen_urls.ts";
import { createMasterApp } from "./app.ts";
import type { Topology } from "./topology.ts";
import type { History } from "./history.ts";
import { recordRun } from "./history_record.ts";
import { Enrolment, type EnrolmentStore } from "./enrolment.ts";
import type { Groups } from "./groups.ts";
import type { Mode } from "../protocol/mod.ts";
import { type RunStatus, runStatus } from "./status.ts";

export interface MasterOptions {
  slices: string;
  hostname?: string;
  port?: number;
  mode: Mode;
  linger: number;
  fanout: number;
  expect?: number;
  /** Admin credential: guards /api/v1/admin/*; never leaves this host. */
  token?: string;
  /** Server credential: a standalone server or fake server presents it in its hello. */
  serverToken?: string;
  /** The admin's topology file, parsed (switch per MAC or address range). */
  topology?: Topology;
  log: Logger;
  /** Record this run (each PC's result) into this history; the caller closes it. */
  history?: History;
  /** Serve the netboot files of this `build-netboot` output under /boot. */
  netboot?: NetbootOptions;
}

export interface NetbootOptions {
  /** Output folder of `cascade build-netboot` (vmlinuz, initrd, build.json). */
  dir: string;
  /** The master's URL as lab PCs reach it; default: the --master the build was made with. */
  publicUrl?: string;
  /** The enrolled PCs and their groups (--groups FILE). */
  groups?: Groups;
  /** --enrol all: image every PC that network-boots (a warning at start). */
  enrolAll?: boolean;
}

/** The settings a netboot build was made with (its build.json). */
export async function readNetbootBuild(dir: string): Promise<BuildInfo> {
  const path = join(dir, "build.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    throw new Error(
      `Cannot use netboot folder "${dir}": no readable "${path}" (build it with: deno task build-netboot --master URL --out ${dir})`,
      { cause },
    );
  }
  try {
    return parseBuildInfo(text, path);
  } catch (cause) {
    throw new Error(
      `Cannot use netboot folder "${dir}": ${
        (cause as Error).message
      } (build it again with: deno task build-netboot --master URL --out ${dir})`,
      { cause },
    );
  }
}

/** Window enrolments live in the history when there is one (they survive a restart). */
function enrolmentStore(history: History | undefined): EnrolmentStore {
  if (history) return history;
  const enrolled = new Map<string, string>();
  return {
    imagedWith: () => null,
    enrolledAs: (mac) => enrolled.get(mac) ?? null,
    enrol: (mac, group) => void enrolled.set(mac, group),
  };
}

/**
 * A PC's group for the dashboard, remembered for a minute per MAC: the feed asks for every PC
 * every tick, and an enrolment may live in the history's database.
 */
function groupLookup(enrolment: Enrolment): (mac: string) => string | undefined {
  const known = new Map<string, { group: string | undefined; at: number }>();
  return (mac) => {
    const hit = known.get(mac);
    if (hit && now() - hit.at < 60) return hit.group;
    const group = enrolment.groupOf(mac)?.name;
    known.set(mac, { group, at: now() });
    return group;
  };
}

function bootApp(
  n: NetbootOptions,
  build: BuildInfo,
  enrolment: Enrolment,
  core: MasterCore,
): Hono {
  return createBootApp({
    dir: n.dir,
    masterUrl: n.publicUrl ?? build.master,
    imageId: enrolment.imageId,
    // Enrolled PCs not imaged with this image get the imaging script; every other PC boots
    // its own disk (enrolment.ts).
    decide: (mac) => enrolment.decide(mac, now()),
    onBootRequest: (mac, ip, d) => core.bootAnswered(mac, ip ?? "unknown", d),
    finishStep: (mac) => enrolment.finishStep(mac),
    target: build.target,
    after: build.after,
  });
}

export interface RunningMaster {
  url: string;
  port: number;
  imageId: string;
  core: MasterCore;
  status(): RunStatus;
  /** Resolves with the reason once the run has ended. */
  ended: Promise<string>;
  /** End the run (if not yet), let peers hear it, stop serving. */
  shutdown(reason?: string): Promise<void>;
}

const now = () => performance.now() / 1000;

export async function startMaster(o: MasterOptions): Promise<RunningMaster> {
  const loaded = await loadManifest(o.slices);
  const slicesDir = (await Deno.stat(o.slices)).isFile ? dirname(o.slices) : o.slices;
  const prover = sourceProver(await openSlicesSource(slicesDir));
  let resolveEnded!: (r: string) => void;
  const ended = new Promise<string>((r) => (resolveEnded = r));
  const core: MasterCore = new MasterCore({
    mode: o.mode,
    linger: o.linger,
    fanout: o.fanout,
    imageId: loaded.imageId,
    totalChunks: loaded.manifest.chunks.length,
    imageBytes: loaded.manifest.size,
    expect: o.expect,
    token: o.token,
    serverToken: o.serverToken,
    ...(o.topology ? { topology: o.topology } : {}),
  }, {
    now,
    prover,
    send(session, msg) {
      const ws = session as WebSocket;
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
    },
    close(session, code, reason) {
      const ws = session as WebSocket;
      try {
        ws.close(code, reason);
      } catch { /* already closing */ }
    },
    log: o.log,
    onEnd: (reason) => resolveEnded(reason),
  });

  const enrolment = o.netboot
    ? new Enrolment(
      o.netboot.groups,
      o.netboot.enrolAll ?? false,
      loaded.imageId,
      enrolmentStore(o.history),
    )
    : undefined;
  if (o.netboot?.enrolAll) {
    o.log("warning", {
      enrol: "all",
      message: "every PC that boots from the network is imaged: its disk is overwritten",
    });
  }

  // The core's clock is performance.now() in seconds: wall time is the time origin plus that.
  const stopRecording = o.history
    ? recordRun(o.history, core, {
      imageName: loaded.manifest.name,
      toWall: (at) => performance.timeOrigin + at * 1000,
      log: o.log,
    })
    : () => {};
  const app = createMasterApp({
    core,
    manifest: loaded.manifest,
    manifestBytes: loaded.bytes,
    log: o.log,
    now,
    boot: enrolment && o.netboot
      ? bootApp(o.netboot, await readNetbootBuild(o.netboot.dir), enrolment, core)
      : undefined,
    enrol: enrolment
      ? (minutes, group) => enrolment.openWindow(now() + minutes * 60, group).until - now()
      : undefined,
    reimage: o.history ? (mac) => o.history!.forgetImaged(mac) : undefined,
    groupOf: enrolment ? groupLookup(enrolment) : undefined,
  });

  // Linger needs a clock: wake at the scheduler's next deadline (and at least every second).
  const ticker = setInterval(() => {
    const d = core.nextDeadline();
    if (d !== null && d <= now()) core.tick();
  }, 250);

  const server = Deno.serve({
    hostname: o.hostname ?? "0.0.0.0",
    port: o.port ?? 8080,
    onListen: () => {},
  }, (req, info) => app.fetch(req, info));
  const addr = server.addr as Deno.NetAddr;
  const host = addr.hostname === "0.0.0.0" ? "127.0.0.1" : addr.hostname;
  const url = httpUrl(host, addr.port);
  o.log("listening", {
    url,
    image: loaded.manifest.name,
    imageId: loaded.imageId,
    mode: o.mode,
    expect: o.expect,
  });
  // Netboot: the same /boot routes over TFTP on the UDP port of the same number, for Debian's
  // signed GRUB (Secure Boot), which has TFTP but no HTTP. Without it the iPXE path still works.
  const tftp = o.netboot
    ? await serveTftp({
      hostname: addr.hostname,
      port: addr.port,
      fetch: (path, ip) =>
        Promise.resolve(
          app.fetch(new Request(`http://tftp${path}`), {
            remoteAddr: { hostname: ip, port: 0, transport: "udp" },
          }),
        ),
      log: (event, fields) => o.log(event, fields as LogFields),
    }).catch((e) => {
      o.log("tftp_unavailable", { port: addr.port, error: (e as Error).message });
      return null;
    })
    : null;

  let stopped = false;
  return {
    url,
    port: addr.port,
    imageId: loaded.imageId,
    core,
    status: () => runStatus(core, loaded.manifest, now()),
    ended,
    async shutdown(reason = "the master is shutting down") {
      if (stopped) return;
      stopped = true;
      core.end(reason);
      clearInterval(ticker);
      // Give peers a moment to read "end" and hang up themselves, then stop serving.
      const deadline = Date.now() + 2000;
      while (Date.now() < deadline && [...core.peers.values()].some((p) => p.connected)) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await server.shutdown();
      await tftp?.close();
      stopRecording();
    },
  };
}
