// The master process: load each image's manifest, run a core per image (site.ts) behind the
// Hono app on one port, tick the schedulers' linger deadlines, and end the runs cleanly.
import type { Hono } from "hono";
import { dirname, join } from "node:path";
import {
  type BootDecision,
  type BuildInfo,
  createBootApp,
  parseBuildInfo,
  serveTftp,
} from "../../netboot/mod.ts";
import { defaultLimits, openSlicesSource, SlotCounter } from "../data/mod.ts";
import type { ServeLimits } from "../data/mod.ts";
import { ProofHasher, sourceProver } from "./prover.ts";
import { loadManifest, type Manifest, openSlices, type Slices } from "../../imagetools/mod.ts";
import type { LogFields, Logger } from "../../imagetools/kit/mod.ts";
import { MasterCore, type Prover } from "./core.ts";
import { httpUrl } from "./listen_urls.ts";
import { attachControlSocket, createMasterApp, imageNameOf } from "./app.ts";
import { frontDoor } from "./front_door.ts";
import type { ControlChannel } from "./control_ws.ts";
import { type ImageRun, Site } from "./site.ts";
import type { Topology } from "./topology.ts";
import type { History } from "./history.ts";
import { recordRun } from "./history_record.ts";
import { Enrolment, type EnrolmentStore } from "./enrolment.ts";
import type { Groups } from "./groups.ts";
import type { Mode } from "../protocol/mod.ts";
import { type RunStatus, runStatus } from "./status.ts";

/** One image the master serves: its slices, its name on the master, its own --expect. */
export interface ImageSpec {
  /** Default: the manifest's name (made fit for a URL). */
  name?: string;
  slices: string;
  /** End this image's run once this many of its clients verified (default: MasterOptions'). */
  expect?: number;
}

export interface MasterOptions {
  /** The images, one run each; the first is the default (PCs without a group image, old clients). */
  images: ImageSpec[];
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
  /** Record each run (each PC's result) into this history; the caller closes it. */
  history?: History;
  /** Serve the netboot files of this `build-netboot` output under /boot. */
  netboot?: NetbootOptions;
  /** Descriptors connections may hold per address and in all (data/slots.ts, front_door.ts). */
  limits?: Partial<ServeLimits>;
  /** Peer records each run holds at most (default MAX_PEERS, roles/master/peer_bound.ts). */
  maxPeers?: number;
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
  site: Site,
): Hono {
  // A boot answer belongs to the run of the image it gives (or the PC's image, when it boots
  // its disk); a stranger's boot to the first run, which lists it as not enrolled.
  const runOf = (mac: string, d: BootDecision) =>
    d.action === "local" && d.reason === "not-enrolled"
      ? site.main
      : site.find(d.action === "image" && d.imageId ? d.imageId : enrolment.imageOf(mac)) ??
        site.main;
  return createBootApp({
    dir: n.dir,
    masterUrl: n.publicUrl ?? build.master,
    imageId: enrolment.imageId,
    // Enrolled PCs not imaged with their image get the imaging script; every other PC boots
    // its own disk (enrolment.ts).
    decide: (mac) => enrolment.decide(mac, now()),
    onBootRequest: (mac, ip, d) => runOf(mac, d).core.bootAnswered(mac, ip ?? "unknown", d),
    finishStep: (mac) => enrolment.finishStep(mac),
    target: build.target,
    after: build.after,
  });
}

/** One image's run as the master process sees it. */
export interface RunningImage {
  name: string;
  imageId: string;
  core: MasterCore;
  status(): RunStatus;
}

export interface RunningMaster {
  url: string;
  port: number;
  /** The first image's (the default one's). */
  imageId: string;
  core: MasterCore;
  /** Every image's run, the first first. */
  runs: RunningImage[];
  status(): RunStatus;
  /** Resolves with the reason once every image's run has ended. */
  ended: Promise<string>;
  /** End every run (if not yet), let peers hear it, stop serving. */
  shutdown(reason?: string): Promise<void>;
}

const now = () => performance.now() / 1000;

interface Loaded {
  spec: ImageSpec;
  name: string;
  manifest: Manifest;
  bytes: Uint8Array;
  imageId: string;
  prover: Prover & { close(): void; warm(): void };
}

/** A chunk's file when it holds the chunk as it is (not zero, not stored compressed). */
function plainFiles(slices: Slices): (index: number) => string | null {
  return (i) => (slices.manifest.chunks[i]?.zstd === undefined ? slices.chunkPath(i) : null);
}

async function loadImage(spec: ImageSpec): Promise<Loaded> {
  const loaded = await loadManifest(spec.slices);
  const slicesDir = (await Deno.stat(spec.slices)).isFile ? dirname(spec.slices) : spec.slices;
  return {
    spec,
    name: spec.name ?? imageNameOf(loaded.manifest.name),
    manifest: loaded.manifest,
    bytes: loaded.bytes,
    imageId: loaded.imageId,
    prover: sourceProver(
      await openSlicesSource(slicesDir),
      new ProofHasher(),
      plainFiles(await openSlices(slicesDir)),
    ),
  };
}

export async function startMaster(o: MasterOptions): Promise<RunningMaster> {
  const images: Loaded[] = [];
  for (const spec of o.images) images.push(await loadImage(spec));
  // The proofs' workers start now, not at the room's first proof (prover.ts says why).
  for (const img of images) img.prover.warm();
  let resolveEnded!: (r: string) => void;
  const ended = new Promise<string>((r) => (resolveEnded = r));
  const several = images.length > 1;
  let runsEnded = 0;
  const runs: ImageRun[] = images.map((img) => {
    // With several images every line of the log says whose run it is about.
    const log: Logger = several
      ? (event, fields) => o.log(event, { image: img.name, ...fields })
      : o.log;
    const expect = img.spec.expect ?? o.expect;
    const core: MasterCore = new MasterCore({
      mode: o.mode,
      linger: o.linger,
      fanout: o.fanout,
      imageId: img.imageId,
      totalChunks: img.manifest.chunks.length,
      imageBytes: img.manifest.size,
      ...(expect !== undefined ? { expect } : {}),
      token: o.token,
      serverToken: o.serverToken,
      ...(o.topology ? { topology: o.topology } : {}),
      ...(o.maxPeers !== undefined ? { maxPeers: o.maxPeers } : {}),
    }, {
      now,
      prover: img.prover,
      send(session, msg) {
        const ws = session as ControlChannel;
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
      },
      close(session, code, reason) {
        const ws = session as ControlChannel;
        try {
          ws.close(code, reason);
        } catch { /* already closing */ }
      },
      log,
      // The master ends once every image's run has.
      onEnd: (reason) => {
        if (++runsEnded === images.length) {
          resolveEnded(several ? "every image's run ended" : reason);
        }
      },
    });
    return { name: img.name, core, manifest: img.manifest, manifestBytes: img.bytes };
  });
  const site = new Site(runs);
  for (const r of runs) {
    if (several) {
      o.log("image", {
        image: r.name,
        imageId: r.core.config.imageId,
        expect: r.core.config.expect,
      });
    }
  }

  const enrolment = o.netboot
    ? new Enrolment(
      o.netboot.groups,
      o.netboot.enrolAll ?? false,
      site.main.core.config.imageId,
      enrolmentStore(o.history),
      new Map(runs.map((r) => [r.name, r.core.config.imageId])),
    )
    : undefined;
  if (o.netboot?.enrolAll) {
    o.log("warning", {
      enrol: "all",
      message: "every PC that boots from the network is imaged: its disk is overwritten",
    });
  }

  // The core's clock is performance.now() in seconds: wall time is the time origin plus that.
  const toWall = (at: number) => performance.timeOrigin + at * 1000;
  const recordings = o.history
    ? runs.map((r) =>
      recordRun(o.history!, r.core, { imageName: r.manifest.name, toWall, log: o.log })
    )
    : [];
  const history = o.history;
  // One counter of the descriptors every connection holds: a stranger cannot hold them all.
  const counter = new SlotCounter(defaultLimits(o.limits));
  const app = createMasterApp({
    site,
    log: o.log,
    now,
    port: () => ({ held: counter.total, cap: counter.limits.total, refused: counter.refused }),
    boot: enrolment && o.netboot
      ? bootApp(o.netboot, await readNetbootBuild(o.netboot.dir), enrolment, site)
      : undefined,
    enrol: enrolment
      ? (minutes, group) => enrolment.openWindow(now() + minutes * 60, group).until - now()
      : undefined,
    reimage: history
      ? (t) => {
        if ("mac" in t) return history.forgetImaged(t.mac);
        if (!enrolment) throw new TypeError("Groups come from --groups FILE (with --netboot DIR)");
        let n = 0;
        for (const mac of enrolment.membersOf(t.group, (g) => history.enrolledIn(g))) {
          n += history.forgetImaged(mac);
        }
        return n;
      }
      : undefined,
    groupOf: enrolment ? groupLookup(enrolment) : undefined,
    groups: o.netboot?.groups?.groups.map((g) => g.name) ?? [],
    ...(history
      ? {
        // Who acted, from which sign-in, when: kept with the runs, shown on the page.
        recordAdmin: (r) => history.addAdminAction({ ...r, at: Date.now() }),
        adminLog: () => history.adminActions(50),
        // Every boot answer this master gave the PC, from the history (the events keep 500).
        bootsOf: (_run, mac) =>
          history.bootsOf(mac, performance.timeOrigin).map((b) => ({
            at: (b.at - performance.timeOrigin) / 1000,
            address: b.address,
            answer: b.answer,
            ...(b.group !== null ? { group: b.group } : {}),
          })),
      }
      : {}),
  });

  // Linger needs a clock: wake at the scheduler's next deadline (and at least every second).
  const ticker = setInterval(() => {
    for (const { core } of runs) {
      const d = core.nextDeadline();
      if (d !== null && d <= now()) core.tick();
    }
  }, 250);

  // One port: the control sessions' WebSockets are served by the front door itself, the rest by
  // the app (front_door.ts says why).
  const server = frontDoor({
    hostname: o.hostname ?? "0.0.0.0",
    port: o.port ?? 8080,
    handler: (req, info) => app.fetch(req, info),
    counter,
    control: {
      path: "/api/v1/control",
      open: (socket, address) => attachControlSocket(site, socket, address, o.log),
    },
    log: o.log,
    name: "master",
  });
  const addr = server.addr;
  const host = addr.hostname === "0.0.0.0" ? "127.0.0.1" : addr.hostname;
  const url = httpUrl(host, addr.port);
  o.log("listening", {
    url,
    image: site.main.manifest.name,
    imageId: site.main.core.config.imageId,
    ...(several ? { images: runs.map((r) => r.name).join(",") } : {}),
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
  const running = runs.map((r) => ({
    name: r.name,
    imageId: r.core.config.imageId,
    core: r.core,
    status: () => runStatus(r.core, r.manifest, now()),
  }));
  return {
    url,
    port: addr.port,
    imageId: site.main.core.config.imageId,
    core: site.main.core,
    runs: running,
    status: running[0].status,
    ended,
    async shutdown(reason = "the master is shutting down") {
      if (stopped) return;
      stopped = true;
      site.end(reason);
      clearInterval(ticker);
      // Give peers a moment to read "end" and hang up themselves, then stop serving.
      const deadline = Date.now() + 2000;
      const connected = () => runs.some((r) => [...r.core.peers.values()].some((p) => p.connected));
      while (Date.now() < deadline && connected()) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await server.shutdown();
      await tftp?.close();
      for (const img of images) img.prover.close();
      for (const stop of recordings) stop();
    },
  };
}
