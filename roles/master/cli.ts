// `cascade master`: run the master until the run ends (--expect N reached, Ctrl-C or SIGTERM),
// then print the summary table.
import { dirname, join, resolve } from "node:path";
import { type CommandSpec, parseCommand, UsageError } from "../../imagetools/kit/mod.ts";
import { type Logger, makeLogger, queuedSink } from "../../imagetools/kit/mod.ts";
import { parseCount, parseDuration } from "../../imagetools/kit/mod.ts";
import { type History, HISTORY_FILE, openHistory } from "./history.ts";
import { normalizeMac } from "../../netboot/mod.ts";
import { lanUrls, machineInterfaces } from "./listen_urls.ts";
import { type ImageSpec, startMaster } from "./run.ts";
import { IMAGE_NAME } from "./site.ts";
import { type Groups, loadGroups } from "./groups.ts";
import type { Mode } from "../protocol/mod.ts";
import { summaryTable } from "./status.ts";
import { parseTopology, type Topology } from "./topology.ts";
import { MAX_PEERS } from "./peer_bound.ts";

export const masterSpec: CommandSpec = {
  name: "master",
  summary: "pair waiting clients with servers, serve status, dashboard and boot files",
  usage: "--slices DIR | --image NAME=DIR [--image NAME=DIR ...] [options]",
  options: {
    slices: {
      type: "string",
      arg: "DIR",
      help: "Slices folder (or manifest) of the image to deploy",
      env: "CASCADE_SLICES",
    },
    image: {
      type: "string",
      arg: "NAME=DIR",
      multiple: true,
      help: 'An image to deploy, by name (several: a run each; a group\'s "image = NAME" picks)',
    },
    port: { type: "string", arg: "P", help: "HTTP port", default: "8080", env: "CASCADE_PORT" },
    host: {
      type: "string",
      arg: "ADDR",
      help: "Address to listen on",
      default: "0.0.0.0",
      env: "CASCADE_HOST",
    },
    mode: {
      type: "string",
      arg: "MODE",
      help: "relay (serve each chunk once verified) or classic (the seed's scheme)",
      default: "relay",
      env: "CASCADE_MODE",
    },
    linger: {
      type: "string",
      arg: "S",
      help: "Seconds a short batch waits before it goes out partial",
      default: "10",
      env: "CASCADE_LINGER",
    },
    fanout: {
      type: "string",
      arg: "N",
      help: "Relay mode: clients per server at once (1 = a chain, best on switched ports)",
      default: "1",
      env: "CASCADE_FANOUT",
    },
    expect: {
      type: "string",
      arg: "N",
      help: "End the run once N clients have verified their disks (per image: NAME=N,NAME=N)",
      env: "CASCADE_EXPECT",
    },
    token: {
      type: "string",
      arg: "T",
      help: "Admin token: admin actions need it; it stays on this host (no PC or server needs it)",
      env: "CASCADE_TOKEN",
    },
    "server-token": {
      type: "string",
      arg: "S",
      help: "Server token: standalone servers and fake servers must present it (default: open)",
      env: "CASCADE_SERVER_TOKEN",
    },
    history: {
      type: "string",
      arg: "FILE",
      help: `Run history database (default: ${HISTORY_FILE} beside the slices folder)`,
      env: "CASCADE_HISTORY",
    },
    "no-history": { type: "boolean", help: "Keep no run history" },
    netboot: {
      type: "string",
      arg: "DIR",
      help: "Serve this build-netboot output under /boot (PCs PXE-boot into the client)",
      env: "CASCADE_NETBOOT",
    },
    "public-url": {
      type: "string",
      arg: "URL",
      help: "The master's URL as lab PCs reach it (default: the build's --master)",
      env: "CASCADE_PUBLIC_URL",
    },
    groups: {
      type: "string",
      arg: "FILE",
      help: "Groups file: the PCs enrolled for imaging and, per group, target, after, finish step",
      env: "CASCADE_GROUPS",
    },
    enrol: {
      type: "string",
      arg: "all",
      help: '"all": image every PC that network-boots, enrolled or not (printed as a warning)',
    },
    reimage: {
      type: "string",
      arg: "MACS",
      help: 'Image these PCs again at their next netboot (comma-separated MACs, or "all")',
    },
    topology: {
      type: "string",
      arg: "FILE",
      help:
        'Relay mode: the switch of each PC (lines "SWITCH MAC|IP|CIDR|A-B"), for PCs not on LLDP',
      env: "CASCADE_TOPOLOGY",
    },
    "max-per-address": {
      type: "string",
      arg: "N",
      help:
        "Descriptors one address may hold of the master: a control session 1, an HTTP connection 4 (more are closed at once)",
      default: "64",
      env: "CASCADE_MAX_PER_ADDRESS",
    },
    "max-peers": {
      type: "string",
      arg: "N",
      help:
        "Peer records a run holds at most (booting PCs included); a hello that would add one more is refused",
      default: String(MAX_PEERS),
      env: "CASCADE_MAX_PEERS",
    },
    "status-file": {
      type: "string",
      arg: "FILE",
      help: "Write the final status (JSON) here when the run ends",
    },
  },
  notes: [
    "With --netboot, only enrolled PCs (--groups FILE, POST /api/v1/admin/enrol, --enrol all)",
    "get the imaging script; every other PC that network-boots boots its own disk.",
    "The run ends when --expect PCs are verified, or on Ctrl-C / SIGTERM; every peer is told,",
    "and a table of PCs, results, times and servers is printed.",
    "Several images: --image games=slices/games --image office=slices/office; the first is the",
    "default. Each image has its own run (queues, cascade, status: ?image=NAME); a PC gets its",
    "group's image (groups file: image = NAME); the master ends once every run has ended.",
  ],
};

export function parseMode(text: string): Mode {
  if (text !== "classic" && text !== "relay") {
    throw new UsageError(`Invalid --mode "${text}": expected "relay" or "classic"`);
  }
  return text;
}

export async function masterMain(args: string[]): Promise<number> {
  const p = parseCommand(masterSpec, args);
  if (!p) return 0;
  const v = p.values as Record<string, string | undefined>;
  const images = parseImages(v.slices, p.values.image as string[] | undefined, v.expect);
  const slices = images[0].slices;
  // Queued, never written on the master's thread (log_sink.ts: a slow reader of stderr held the
  // thread, and every PC's session with it).
  const lines = queuedSink();
  const log = makeLogger("master", (line) => lines(`${new Date().toISOString()} ${line}`));
  const history = p.values["no-history"]
    ? undefined
    : await openMasterHistory(slices, v.history, log);
  if (v.reimage !== undefined) {
    if (!history) throw new UsageError("--reimage needs the run history (drop --no-history)");
    for (const item of v.reimage.split(",")) {
      const mac = item.trim() === "all" ? "all" : normalizeMac(item.trim());
      if (!mac) throw new UsageError(`Invalid --reimage "${item}": expected MACs or "all"`);
      log("reimage", { mac, forgotten: history.forgetImaged(mac) });
    }
  }
  if (v.enrol !== undefined && v.enrol !== "all") {
    throw new UsageError(`Invalid --enrol "${v.enrol}": expected "all" (or use --groups FILE)`);
  }
  if ((v.enrol !== undefined || v.groups !== undefined) && !v.netboot) {
    throw new UsageError(
      "--groups and --enrol decide who netboots into imaging: add --netboot DIR",
    );
  }
  let groups: Groups | undefined;
  try {
    groups = v.groups !== undefined ? loadGroups(v.groups) : undefined;
  } catch (err) {
    history?.close();
    throw new UsageError((err as Error).message);
  }
  if (v.enrol === "all") {
    console.error(
      "WARNING: --enrol all: every PC that boots from the network is imaged and its disk overwritten",
    );
  }
  let topology: Topology | undefined;
  if (v.topology !== undefined) {
    try {
      topology = parseTopology(await Deno.readTextFile(v.topology), v.topology);
    } catch (err) {
      history?.close();
      throw new UsageError(
        err instanceof SyntaxError
          ? err.message
          : `Cannot read --topology "${v.topology}": ${(err as Error).message}`,
      );
    }
  }
  const master = await startMaster({
    ...(topology ? { topology } : {}),
    images,
    hostname: v.host,
    port: parseCount(v.port!, "--port", 0, 65535),
    mode: parseMode(v.mode!),
    linger: parseDuration(v.linger!, "--linger"),
    fanout: parseCount(v.fanout!, "--fanout", 1, 64),
    expect: v.expect !== undefined && /^\d+$/.test(v.expect)
      ? parseCount(v.expect, "--expect", 1, 100000)
      : undefined,
    token: v.token,
    serverToken: v["server-token"],
    limits: { perAddress: parseCount(v["max-per-address"]!, "--max-per-address", 1, 1_000_000) },
    maxPeers: parseCount(v["max-peers"]!, "--max-peers", 1, 1_000_000),
    log,
    history,
    netboot: v.netboot
      ? { dir: v.netboot, publicUrl: v["public-url"], groups, enrolAll: v.enrol === "all" }
      : undefined,
  }).catch((err) => {
    history?.close();
    throw err;
  });
  console.error(
    `Cascade master on ${master.url} (${
      master.runs.map((r) => `image ${r.name} ${r.imageId}`).join(", ")
    })`,
  );
  if (v["server-token"] === undefined) {
    console.error("Servers register without a credential: give --server-token on a shared LAN");
  }
  const lan = lanUrls(v.host!, master.port, machineInterfaces());
  if (lan.length) console.error(`Lab PCs and browsers reach it at ${lan.join(", ")}`);
  const stop = (signal: string) => master.core.end(`stopped by ${signal}`);
  const onInt = () => stop("SIGINT");
  const onTerm = () => stop("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  const reason = await master.ended;
  await master.shutdown(reason);
  Deno.removeSignalListener("SIGINT", onInt);
  Deno.removeSignalListener("SIGTERM", onTerm);
  history?.close();
  await lines.flush();
  const statuses = master.runs.map((r) => r.status());
  if (v["status-file"]) {
    // Written under a temporary name and renamed, so a reader never sees half a file. Several
    // images: {"runs": [status per image, the first first]}.
    const tmp = `${v["status-file"]}.tmp`;
    const body = statuses.length === 1 ? statuses[0] : { runs: statuses };
    await Deno.writeTextFile(tmp, JSON.stringify(body, null, 2) + "\n");
    await Deno.rename(tmp, v["status-file"]);
  }
  console.log(
    master.runs.map((r, i) =>
      (statuses.length > 1 ? `image ${r.name}\n` : "") + summaryTable(statuses[i])
    ).join("\n\n"),
  );
  return 0;
}

/**
 * The images to deploy: --slices DIR (one), or --image NAME=DIR once per image; --expect N for
 * every run, or NAME=N,NAME=N for each.
 */
export function parseImages(
  slices: string | undefined,
  given: string[] | undefined,
  expect: string | undefined,
): ImageSpec[] {
  if (slices !== undefined && given?.length) {
    throw new UsageError("Give --slices DIR (one image) or --image NAME=DIR, not both");
  }
  let images: ImageSpec[];
  if (given?.length) {
    images = given.map((item) => {
      const m = /^([^=]+)=(.+)$/.exec(item);
      if (!m || !IMAGE_NAME.test(m[1])) {
        throw new UsageError(
          `Invalid --image "${item}": expected NAME=DIR (NAME of A-Z a-z 0-9 . _ -)`,
        );
      }
      return { name: m[1], slices: m[2] };
    });
    const names = images.map((i) => i.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new UsageError(`Invalid --image: "${twice}" is given twice`);
  } else if (slices !== undefined) {
    images = [{ slices }];
  } else {
    throw new UsageError(
      'Missing --slices (or CASCADE_SLICES, or --image NAME=DIR per image) (see "cascade master --help")',
    );
  }
  if (expect === undefined || /^\d+$/.test(expect)) return images;
  for (const part of expect.split(",")) {
    const m = /^([^=]+)=(\d+)$/.exec(part.trim());
    const image = m ? images.find((i) => i.name === m[1]) : undefined;
    if (!m || !image) {
      throw new UsageError(
        `Invalid --expect "${expect}": expected N, or NAME=N for each --image (${
          images.map((i) => i.name ?? "?").join(", ")
        })`,
      );
    }
    image.expect = parseCount(m[2], `--expect ${m[1]}`, 1, 100000);
  }
  return images;
}

/**
 * The run history: --history FILE must open; the default (beside the slices folder, where a
 * lab keeps its images) is best effort, since a read-only folder must not stop a run.
 */
async function openMasterHistory(
  slices: string,
  given: string | undefined,
  log: Logger,
): Promise<History | undefined> {
  if (given !== undefined) return openHistory(given);
  const info = await Deno.stat(slices).catch(() => null);
  const folder = info?.isFile ? dirname(dirname(resolve(slices))) : dirname(resolve(slices));
  const path = join(folder, HISTORY_FILE);
  try {
    return openHistory(path);
  } catch (err) {
    log("history-off", { path, error: (err as Error).message });
    return undefined;
  }
}
