// `cascade demo`: a whole lab images itself on this machine. Real processes (master, fake
// server, N clients) on loopback, files standing in for disks; live progress; a final table
// that checks every disk against the golden image independently of the clients' own checks.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { type CommandSpec, parseCommand, UsageError } from "../../imagetools/kit/mod.ts";
import { sliceImage } from "../../imagetools/mod.ts";
import { formatBytes, formatDuration, parseCount, parseSize } from "../../imagetools/kit/mod.ts";
import { parseMode } from "../master/mod.ts";
import type { Mode } from "../protocol/mod.ts";
import type { RunStatus } from "../master/mod.ts";
import { LabProcesses } from "./lab_processes.ts";

export const demoSpec: CommandSpec = {
  name: "demo",
  summary: "a whole lab images itself on this machine (files stand in for disks)",
  usage: "[options]",
  options: {
    clients: { type: "string", arg: "N", help: "Lab PCs to image", default: "10" },
    size: { type: "string", arg: "SIZE", help: "Size of the generated image", default: "64MiB" },
    image: {
      type: "string",
      arg: "FILE",
      help: "Use this golden image instead of a generated one",
    },
    mode: { type: "string", arg: "MODE", help: "relay or classic", default: "relay" },
    "fake-capacity": {
      type: "string",
      arg: "N",
      help: "Clients the fake server serves at once",
      default: "2",
    },
    capacity: {
      type: "string",
      arg: "N",
      help: "Clients an imaged PC serves at once",
      default: "3",
    },
    "chunk-size": { type: "string", arg: "SIZE", help: "Chunk size", default: "1MiB" },
    linger: { type: "string", arg: "S", help: "Master's linger for short batches", default: "2" },
    dir: { type: "string", arg: "DIR", help: "Work folder (default: a new temporary folder)" },
    keep: { type: "boolean", help: "Keep the work folder (disks, slices, logs) afterwards" },
    timeout: { type: "string", arg: "S", help: "Give up after this many seconds", default: "600" },
  },
  notes: [
    "Exit status 0 when every PC's disk matches the golden image byte for byte, 1 otherwise.",
    "Nothing is left running; the work folder is removed unless --keep or --dir is given.",
  ],
};

/** A sample golden image: random regions with zero runs between them (as a real disk has). */
export async function makeSampleImage(path: string, size: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const piece = new Uint8Array(1024 * 1024);
    let written = 0;
    let region = 0;
    while (written < size) {
      const n = Math.min(piece.length, size - written);
      // Every fourth MiB stays zero: zero chunks are never transferred.
      if (region % 4 === 3) piece.fill(0);
      else for (let o = 0; o < n; o += 65536) crypto.getRandomValues(piece.subarray(o, o + 65536));
      let off = 0;
      while (off < n) off += await file.write(piece.subarray(off, n));
      written += n;
      region++;
    }
  } finally {
    file.close();
  }
}

export async function sha256File(path: string, limit?: number): Promise<string> {
  const h = createHash("sha256");
  const file = await Deno.open(path);
  try {
    const buf = new Uint8Array(4 * 1024 * 1024);
    let left = limit ?? Infinity;
    while (left > 0) {
      const n = await file.read(buf.subarray(0, Math.min(buf.length, left)));
      if (n === null) break;
      h.update(buf.subarray(0, n));
      left -= n;
    }
  } finally {
    file.close();
  }
  return h.digest("hex");
}

interface DemoRow {
  pc: string;
  verified: boolean;
  matches: boolean;
  seconds: number | null;
  servedBy: string;
  failures: number;
}

export function renderDemoTable(rows: DemoRow[]): string {
  const head = ["PC", "client verified", "disk = golden", "time", "served by", "failures"];
  const cells = rows.map((r) => [
    r.pc,
    r.verified ? "yes" : "NO",
    r.matches ? "yes" : "NO",
    r.seconds === null ? "-" : formatDuration(r.seconds),
    r.servedBy || "-",
    String(r.failures),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(w[i])).join("  ").trimEnd();
  return [line(head), line(w.map((n) => "-".repeat(n))), ...cells.map(line)].join("\n");
}

function progressLine(s: RunStatus, elapsed: number): string {
  const t = s.totals;
  const pct = s.peers.filter((p) => p.role === "client").reduce((a, p) => a + p.progress, 0) /
    Math.max(1, t.clients);
  return `${
    formatDuration(elapsed)
  }: ${t.verified}/${t.clients} PCs verified, ${t.receiving} receiving, ${t.waiting} waiting, ${
    (pct * 100).toFixed(0)
  }% of all bytes`;
}

export async function demoMain(args: string[]): Promise<number> {
  const p = parseCommand(demoSpec, args);
  if (!p) return 0;
  const v = p.values as Record<string, string | boolean | undefined>;
  const clients = parseCount(v.clients as string, "--clients", 1, 200);
  const mode: Mode = parseMode(v.mode as string);
  const chunkSize = parseSize(v["chunk-size"] as string, "--chunk-size");
  const timeout = parseCount(v.timeout as string, "--timeout", 1, 86400);
  const ownDir = !v.dir;
  const dir = (v.dir as string | undefined) ?? await Deno.makeTempDir({ prefix: "cascade-demo-" });
  await Deno.mkdir(join(dir, "disks"), { recursive: true });
  let image = v.image as string | undefined;
  if (image === undefined) {
    const size = parseSize(v.size as string, "--size");
    if (size < 1) throw new UsageError(`Invalid --size "${v.size}": must be at least 1 byte`);
    image = join(dir, "golden.img");
    console.log(`Making a ${formatBytes(size)} sample golden image (random with zero runs)...`);
    await makeSampleImage(image, size);
  }
  const slices = join(dir, "slices");
  const sliced = await sliceImage({ image, out: slices, chunkSize, force: true });
  const imageId = sliced.imageId;
  console.log(
    `Sliced "${image}" into ${sliced.manifest.chunks.length} chunks; image id ${imageId}`,
  );

  const lab = new LabProcesses(join(dir, "logs"));
  const statusFile = join(dir, "status.json");
  const start = performance.now();
  let ok = false;
  try {
    const master = await lab.startMaster([
      "--slices",
      slices,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--mode",
      mode,
      "--expect",
      String(clients),
      "--linger",
      v.linger as string,
      "--status-file",
      statusFile,
      // Every PC of this lab comes from 127.0.0.1, where a real room's each have an address:
      // the per-address cap (64 descriptors, an HTTP connection 4) is scaled to the room.
      "--max-per-address",
      String(Math.max(64, 16 * (clients + 1))),
    ]);
    console.log(
      `Master on ${master} (dashboard: ${master}/); ${clients} PCs, ${mode} mode; logs in ${
        join(dir, "logs")
      }`,
    );
    lab.start("fake-server", [
      "fake-server",
      "--master",
      master,
      "--slices",
      slices,
      "--listen",
      "127.0.0.1",
      "--capacity",
      v["fake-capacity"] as string,
    ]);
    const names = Array.from({ length: clients }, (_, i) => `pc-${String(i + 1).padStart(2, "0")}`);
    for (const name of names) {
      lab.start(name, [
        "client",
        "--master",
        master,
        "--target",
        join(dir, "disks", `${name}.img`),
        "--name",
        name,
        "--image-id",
        imageId,
        "--listen",
        "127.0.0.1",
        "--capacity",
        v.capacity as string,
        "--quiet",
      ]);
    }
    // Watch the run through the master's status API until the master has ended it.
    const tty = Deno.stdout.isTerminal();
    let lastLine = 0;
    const deadline = start + timeout * 1000;
    while (lab.running("master")) {
      if (performance.now() > deadline) throw new Error(`The demo took longer than ${timeout} s`);
      try {
        const s = await (await fetch(`${master}/api/v1/status`)).json() as RunStatus;
        const line = progressLine(s, (performance.now() - start) / 1000);
        if (tty) await Deno.stdout.write(new TextEncoder().encode(`\r\x1b[2K${line}`));
        else if (performance.now() - lastLine > 2000) {
          console.log(line);
          lastLine = performance.now();
        }
      } catch { /* the master is finishing */ }
      await new Promise((r) => setTimeout(r, 500));
    }
    if (tty) console.log();
    await lab.waitAll(30_000);
    const final = JSON.parse(await Deno.readTextFile(statusFile)) as RunStatus;
    const golden = sliced.manifest.sha256;
    const rows: DemoRow[] = [];
    for (const name of names) {
      const peer = final.peers.find((q) => q.name === name && q.role === "client");
      const disk = join(dir, "disks", `${name}.img`);
      const matches = await sha256File(disk, sliced.manifest.size).then((h) => h === golden)
        .catch(() => false);
      rows.push({
        pc: name,
        verified: Boolean(peer?.verified),
        matches,
        seconds: peer?.seconds ?? null,
        servedBy: peer?.servedBy.join(" > ") ?? "",
        failures: peer?.failures.length ?? 0,
      });
    }
    console.log("");
    console.log(renderDemoTable(rows));
    const good = rows.filter((r) => r.verified && r.matches).length;
    console.log(
      `\n${good} of ${clients} PCs imaged and byte-identical to the golden image in ${
        formatDuration((performance.now() - start) / 1000)
      } (${mode} mode, ${formatBytes(sliced.manifest.size)}).`,
    );
    ok = good === clients;
  } finally {
    await lab.stopAll();
    if (ownDir && !v.keep) await Deno.remove(dir, { recursive: true }).catch(() => {});
    else console.log(`Work folder kept: ${dir}`);
  }
  return ok ? 0 : 1;
}
