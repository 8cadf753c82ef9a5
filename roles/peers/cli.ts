// `cascade client`, `cascade server` and `cascade fake-server`: the command lines of the peers.
import {
  type CommandSpec,
  type OptionSpec,
  parseCommand,
  type ParsedCommand,
  requireOption,
  UsageError,
} from "../../imagetools/kit/mod.ts";
import { type Logger, makeLogger } from "../../imagetools/kit/mod.ts";
import { isImageId } from "../../imagetools/mod.ts";
import { progressMode } from "../../imagetools/kit/mod.ts";
import { parseCount, parseDuration, parseRate } from "../../imagetools/kit/mod.ts";
import { type ChunkSource, keepMd5Warm, openDiskSource, openSlicesSource } from "../data/mod.ts";
import { DiskError } from "./target_choice.ts";
import { runClient } from "./client.ts";
import { fetchManifestFromPeers } from "./manifest_fetch.ts";
import { AFTER_ACTIONS, type AfterAction, normalizeMac } from "../../netboot/mod.ts";
import { isPeerName, PEER_NAME_RULE } from "../protocol/mod.ts";
import { checkOwnDisk } from "./own_disk.ts";
import { runServer } from "./server.ts";

const common: Record<string, OptionSpec> = {
  master: {
    type: "string",
    arg: "URL",
    help: "The master, e.g. http://10.0.0.1:8080",
    env: "CASCADE_MASTER",
  },
  name: {
    type: "string",
    arg: "NAME",
    help: "Name shown on the dashboard (default: the hostname)",
    env: "CASCADE_NAME",
  },
  "server-token": {
    type: "string",
    arg: "S",
    help: "Server token, when the master asks for one (its --server-token)",
    env: "CASCADE_SERVER_TOKEN",
  },
  listen: {
    type: "string",
    arg: "ADDR",
    help: "Address the chunk server listens on",
    default: "0.0.0.0",
    env: "CASCADE_LISTEN",
  },
  "rate-limit": {
    type: "string",
    arg: "RATE",
    help: "Cap this PC's upload, e.g. 50mbit or 5MB/s (default: no cap)",
    env: "CASCADE_RATE_LIMIT",
  },
  "port-rate": {
    type: "string",
    arg: "RATE",
    help: "Relay mode: this source's port, e.g. 1gbit: it feeds as many chains as that carries",
    env: "CASCADE_PORT_RATE",
  },
};

export const clientSpec: CommandSpec = {
  name: "client",
  summary: "receive the image onto a disk, verify it, then serve it on",
  usage: "--master URL --target DISK|RULE [options]",
  options: {
    master: common.master,
    target: {
      type: "string",
      arg: "DISK|RULE",
      help:
        'Disk (block device) or file to write; or a target rule: "auto" (the first non-removable ' +
        "disk of at least the image's size), path:, model:, min:, max:, usb, largest (commas)",
      env: "CASCADE_TARGET",
    },
    "disk-retries": {
      type: "string",
      arg: "N",
      help: "Tries again after the disk fails a write or read, then stops (exit code 2)",
      default: "3",
    },
    "disk-backoff": {
      type: "string",
      arg: "S",
      help: "Seconds before the first try again after a disk failure (doubled each time)",
      default: "5",
    },
    "image-id": {
      type: "string",
      arg: "SHA256",
      help: "Accept only the image whose manifest has this SHA-256",
      env: "CASCADE_IMAGE",
    },
    capacity: {
      type: "string",
      arg: "N",
      help: "Clients to serve at once once imaged",
      default: "3",
      env: "CASCADE_CAPACITY",
    },
    after: {
      type: "string",
      arg: "ACTION",
      help: "Once imaged: serve (until the run ends), reboot or poweroff (exit at once)",
      default: "serve",
      env: "CASCADE_AFTER",
    },
    name: common.name,
    mac: { type: "string", arg: "MAC", help: "This PC's MAC, shown on the dashboard" },
    listen: common.listen,
    "rate-limit": common["rate-limit"],
    inflight: {
      type: "string",
      arg: "N",
      help: "Chunk requests in flight",
      default: "4",
      env: "CASCADE_INFLIGHT",
    },
    "md5": {
      type: "boolean",
      help: "Check each chunk's MD5 as well as its SHA-256 (SHA-256 alone decides by default)",
    },
    "no-probe": { type: "boolean", help: "Do not time the master's probe before the hello" },
    lldp: {
      type: "string",
      arg: "IFACE",
      help: "Listen on IFACE for the switch's LLDP frame (root) and tell the master",
      env: "CASCADE_LLDP",
    },
    "lldp-wait": {
      type: "string",
      arg: "S",
      help: "With --lldp: wait at most S seconds for the frame before the hello",
      default: "31",
    },
    "master-timeout": {
      type: "string",
      arg: "S",
      help: "Give up when the master is unreachable this long (0 = wait forever)",
      default: "0",
    },
    quiet: { type: "boolean", short: "q", help: "No progress output" },
  },
  notes: [
    "Exit status: 0 when the disk is verified and the run ended (or --after reboot|poweroff),",
    "1 when the run ended before this PC was imaged, its finishing step failed, or on an error,",
    "2 when the disk failed (no disk matches the rule, or writes/reads failed after the retries).",
  ],
};

export const serverSpec: CommandSpec = {
  name: "server",
  summary: "serve the image from a disk that already holds it",
  usage: "--master URL --source PATH [options]",
  options: {
    master: common.master,
    source: {
      type: "string",
      arg: "PATH",
      help: "Disk or image file holding the image",
      env: "CASCADE_SOURCE",
    },
    capacity: {
      type: "string",
      arg: "N",
      help: "Clients to serve at once",
      default: "3",
      env: "CASCADE_CAPACITY",
    },
    trust: { type: "boolean", help: "Skip checking the source against the manifest first" },
    image: {
      type: "string",
      arg: "NAME|ID",
      help: "Which of the master's images the source holds (default: its first)",
      env: "CASCADE_IMAGE",
    },
    name: common.name,
    "server-token": common["server-token"],
    listen: common.listen,
    "rate-limit": common["rate-limit"],
    "port-rate": common["port-rate"],
  },
};

export const fakeServerSpec: CommandSpec = {
  name: "fake-server",
  summary: "serve the image from its slices to bootstrap the cascade",
  usage: "--slices DIR --master URL [options]",
  options: {
    slices: { type: "string", arg: "DIR", help: "Slices folder", env: "CASCADE_SLICES" },
    master: common.master,
    capacity: {
      type: "string",
      arg: "N",
      help: "Clients to serve at once",
      default: "2",
      env: "CASCADE_FAKE_CAPACITY",
    },
    name: { ...common.name, help: "Name shown on the dashboard", default: "fake-server" },
    "server-token": common["server-token"],
    listen: common.listen,
    "rate-limit": common["rate-limit"],
    "port-rate": common["port-rate"],
  },
};

function masterUrl(spec: CommandSpec, p: ParsedCommand): string {
  const text = requireOption(spec, p, "master");
  try {
    const u = new URL(text);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error();
    return u.href.replace(/\/+$/, "");
  } catch {
    throw new UsageError(`Invalid --master "${text}": expected a URL like http://10.0.0.1:8080`);
  }
}

function rateLimit(v: Record<string, unknown>): number | undefined {
  const text = v["rate-limit"];
  return typeof text === "string" ? parseRate(text, "--rate-limit") : undefined;
}

/** Serve until the master ends the run; a server the master refused says why and exits 1. */
async function serveUntilEnd(
  spec: CommandSpec,
  v: Record<string, unknown>,
  o: {
    master: string;
    source: ChunkSource;
    role: "server" | "fake";
    name: string;
    capacity: number;
    log: Logger;
  },
): Promise<number> {
  armSignals();
  const result = await runServer({
    masterUrl: o.master,
    source: o.source,
    role: o.role,
    name: o.name,
    capacity: o.capacity,
    token: v["server-token"] as string | undefined,
    listen: v.listen as string,
    rateLimit: rateLimit(v),
    ...(typeof v["port-rate"] === "string"
      ? { portRate: parseRate(v["port-rate"], "--port-rate") }
      : {}),
    log: o.log,
  });
  o.log("stopped", { reason: result.reason, served: result.servedBytes });
  if (!result.reason.startsWith("refused")) return 0;
  console.error(`cascade ${spec.name}: ${result.reason}`);
  return 1;
}

function parseAfter(text: string): AfterAction {
  if (!(AFTER_ACTIONS as readonly string[]).includes(text)) {
    const [last, ...rest] = [...AFTER_ACTIONS].reverse();
    throw new UsageError(
      `Invalid --after "${text}": expected ${rest.reverse().join(", ")} or ${last}`,
    );
  }
  return text as AfterAction;
}

function peerName(given: unknown, fallback: string): string {
  const name = typeof given === "string" && given ? given : fallback;
  if (!isPeerName(name)) {
    throw new UsageError(`Invalid --name "${name}": use ${PEER_NAME_RULE}`);
  }
  return name;
}

/** Set Deno's signal handling up now, while descriptors are free: Deno does it on first use and
 * panics when none is left then (measured: a chunk server flooded to EMFILE died so). SIGTERM
 * still ends the process as it would by default. */
function armSignals() {
  Deno.addSignalListener("SIGTERM", () => Deno.exit(143));
}

export async function clientMain(args: string[]): Promise<number> {
  const p = parseCommand(clientSpec, args);
  if (!p) return 0;
  armSignals();
  const v = p.values as Record<string, string | boolean | undefined>;
  const master = masterUrl(clientSpec, p);
  const target = requireOption(clientSpec, p, "target");
  const imageId = v["image-id"] as string | undefined;
  if (imageId !== undefined && !isImageId(imageId)) {
    throw new UsageError(`Invalid --image-id "${imageId}": expected 64 lower-case hex digits`);
  }
  const name = peerName(v.name, Deno.hostname());
  const given = v.mac as string | undefined;
  const mac = given === undefined ? undefined : normalizeMac(given);
  if (mac === null) {
    throw new UsageError(`Invalid --mac "${given}": expected six hex pairs like 52:54:00:12:34:56`);
  }
  let result: Awaited<ReturnType<typeof runClient>>;
  // Its MD5 worker starts now, not when it is assigned (roles/data/md5_pool.ts says why).
  if (v.md5) keepMd5Warm(1);
  try {
    result = await runClient({
      masterUrl: master,
      target,
      diskRetries: parseCount(v["disk-retries"] as string, "--disk-retries", 0, 100),
      diskBackoff: parseDuration(v["disk-backoff"] as string, "--disk-backoff"),
      imageId,
      name,
      mac,
      capacity: parseCount(v.capacity as string, "--capacity", 1, 64),
      after: parseAfter(v.after as string),
      listen: v.listen as string,
      rateLimit: rateLimit(v),
      inflight: parseCount(v.inflight as string, "--inflight", 1, 64),
      verifyMd5: v.md5 === true,
      progress: progressMode(Boolean(v.quiet)),
      log: makeLogger(`client[${name}]`),
      masterTimeout: parseDuration(v["master-timeout"] as string, "--master-timeout"),
      probe: !v["no-probe"],
      ...(typeof v.lldp === "string" ? { lldp: v.lldp } : {}),
      lldpWait: parseDuration(v["lldp-wait"] as string, "--lldp-wait"),
    });
  } catch (err) {
    if (!(err instanceof DiskError)) throw err;
    console.error(`cascade client: DISK FAILED: ${err.message}`);
    return 2;
  }
  if (!result.verified) {
    console.error(`cascade client: ${name} was not imaged: ${result.reason}`);
    return 1;
  }
  return 0;
}

export async function serverMain(args: string[]): Promise<number> {
  const p = parseCommand(serverSpec, args);
  if (!p) return 0;
  const v = p.values as Record<string, string | boolean | undefined>;
  const master = masterUrl(serverSpec, p);
  const source = requireOption(serverSpec, p, "source");
  const name = peerName(v.name, Deno.hostname());
  const capacity = parseCount(v.capacity as string, "--capacity", 1, 64);
  const log = makeLogger(`server[${name}]`);
  const { bytes: manifestBytes } = await fetchManifestFromPeers(
    master,
    log,
    60,
    v.image as string | undefined,
  );
  // A disk that does not hold the image must never serve it: check it first.
  if (!v.trust) await checkOwnDisk(source, manifestBytes, progressMode(false));
  const disk = await openDiskSource(source, manifestBytes);
  return await serveUntilEnd(serverSpec, v, {
    master,
    source: disk,
    role: "server",
    name,
    capacity,
    log,
  });
}

export async function fakeServerMain(args: string[]): Promise<number> {
  const p = parseCommand(fakeServerSpec, args);
  if (!p) return 0;
  const v = p.values as Record<string, string | boolean | undefined>;
  const slices = requireOption(fakeServerSpec, p, "slices");
  const master = masterUrl(fakeServerSpec, p);
  const name = peerName(v.name, "fake-server");
  const log = makeLogger(`fake-server[${name}]`);
  return await serveUntilEnd(fakeServerSpec, v, {
    master,
    source: await openSlicesSource(slices),
    role: "fake",
    name,
    capacity: parseCount(v.capacity as string, "--capacity", 1, 64),
    log,
  });
}
