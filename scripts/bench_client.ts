// Benchmark one client against what an admin could build by hand, measured in the same run:
//   (a) curl URL/v1/image | tee >(md5sum) >(sha256sum) > target   (the baseline)
//   (b) a Cascade Receiver fetching, verifying (SHA-256 per chunk) and writing the same
//       image from the same chunk server, in its own process (so its CPU time is its own)
//   (c) this machine's hash limit: MD5 + SHA-256 of the same bytes in memory, one thread
//   (d) a relay (scripts/bench_relay.ts): a receiver that serves each verified chunk on to one
//       downstream receiver at the same time; its CPU seconds per GB relayed
//   (e) the loopback floor (scripts/bench_floor.ts): a plain TCP sender of as many bytes, its
//       CPU s/GB: what serving costs on loopback before any of Cascade's own work
// Prints medians: MB/s, ratio to curl, ratio to the hash limit, CPU seconds per GB, and the
// client's read-back after the fetch. --compare DIR adds the receiver of another checkout (its
// roles/data/mod.ts) in the same harness, alternating with this one: an A/B of two versions (the
// relay row too).
//
//   deno task bench:client [--size 1G] [--runs 3] [--chunk-size 1M] [--inflight 4]
//                          [--md5-threads 1] [--variants] [--compare DIR] [--dir DIR] [--keep]
import { createHash, randomFillSync } from "node:crypto";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { formatBytes, parseSize } from "../imagetools/kit/mod.ts";
import { Md5Hasher } from "../imagetools/hashing/mod.ts";
import { writeSlices } from "../roles/data/testkit.ts";
import type * as DataRoom from "../roles/data/mod.ts";
import { imageUrl } from "../roles/protocol/mod.ts";
import { relayChild, relayRun, type RelaySample } from "./bench_relay.ts";
import { floorRun, type FloorSample } from "./bench_floor.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLK_TCK = 100; // Linux USER_HZ: /proc times are in 1/100 s on every mainstream kernel.

/** utime + stime of a process (all its threads), in seconds. */
async function cpuSeconds(pid: number | "self"): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

async function peakRssBytes(): Promise<number> {
  const status = await Deno.readTextFile("/proc/self/status");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---- child: one Receiver run ---------------------------------------------------------------

async function receiveChild(args: {
  url: string;
  manifest: string;
  target: string;
  inflight: number;
  md5Threads: number;
  /** The checkout whose receiver runs (default: this one). */
  code: string;
  /** A relay's ticket (the relay serves nobody without one). */
  ticket?: string;
}): Promise<void> {
  const room: typeof DataRoom = await import(
    pathToFileURL(join(args.code, "roles/data/mod.ts")).href
  );
  const { Receiver, openTarget } = room;
  const manifestBytes = await Deno.readFile(args.manifest);
  const cpu0 = await cpuSeconds("self");
  const t0 = performance.now();
  const { name, size } = JSON.parse(new TextDecoder().decode(manifestBytes));
  const target = await openTarget(args.target, size, name);
  const r = new Receiver({
    manifestBytes,
    target,
    inflight: args.inflight,
    md5Threads: args.md5Threads,
  });
  await r.fetchFrom(args.url, args.ticket ? { ticket: args.ticket } : {});
  const seconds = (performance.now() - t0) / 1000;
  const cpu = (await cpuSeconds("self")) - cpu0;
  // What the client does next: read back what verify-behind did not (it must find nothing).
  const t1 = performance.now();
  const bad = await r.readBack();
  const readBack = (performance.now() - t1) / 1000;
  target.close();
  if (bad.length > 0) throw new Error(`Read-back found ${bad.length} bad chunk(s)`);
  console.log(
    JSON.stringify({ seconds, cpu, readBack, rss: await peakRssBytes(), stats: r.stats() }),
  );
}

// ---- parent --------------------------------------------------------------------------------

async function run(cmd: string, args: string[], what: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${what} failed: ${new TextDecoder().decode(out.stderr).trim() || text}`);
  }
  return text;
}

/** A random image with zero runs (the first 8 MiB of every 64 MiB), written in 16 MiB steps. */
async function makeImage(path: string, size: number): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  const step = 16 << 20;
  const buf = new Uint8Array(step);
  for (let off = 0; off < size; off += step) {
    const n = Math.min(step, size - off);
    const piece = buf.subarray(0, n);
    if (off % (64 << 20) === 0) piece.fill(0, 0, Math.min(n, 8 << 20));
    for (let p = off % (64 << 20) === 0 ? Math.min(n, 8 << 20) : 0; p < n; p += 1 << 16) {
      randomFillSync(piece, p, Math.min(1 << 16, n - p));
    }
    let w = 0;
    while (w < n) w += await f.write(piece.subarray(w));
  }
}

/** Slice with `cascade slice` when it exists, else with the roles test kit's small slicer. */
async function slice(image: string, out: string, chunkSize: number): Promise<string> {
  const probe = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "cascade.ts"), "slice", "--help"],
    stdout: "null",
    stderr: "null",
  }).output();
  if (probe.success) {
    await run(Deno.execPath(), [
      "run",
      "-A",
      join(ROOT, "cascade.ts"),
      "slice",
      image,
      "--out",
      out,
      "--chunk-size",
      String(chunkSize),
      "--quiet",
    ], "cascade slice");
    return "cascade slice";
  }
  await writeSlices(out, await Deno.readFile(image), chunkSize, "bench.img");
  return "inline slicer (cascade slice not available)";
}

/** Remove the last run's target and flush dirty pages, so no run pays for another's writeback. */
async function settle(target: string): Promise<void> {
  await Deno.remove(target).catch(() => {});
  await run("sync", [], "sync");
}

interface Sample {
  seconds: number;
  cpu: number;
  serverCpu: number;
  rss?: number;
  readBack?: number;
}

async function curlRun(url: string, dir: string, target: string, serverPid: number) {
  const m = join(dir, "md5.fifo");
  const s = join(dir, "sha.fifo");
  // tee >(md5sum) >(sha256sum) with named pipes, so the shell can wait for both hashes.
  await settle(target);
  const script = `set -eo pipefail
rm -f "${m}" "${s}"; mkfifo "${m}" "${s}"
md5sum < "${m}" > "${dir}/curl.md5" & a=$!
sha256sum < "${s}" > "${dir}/curl.sha256" & b=$!
curl -sS --fail "${imageUrl(url)}" | tee "${m}" "${s}" > "${target}"
wait $a $b
times`;
  const s0 = await cpuSeconds(serverPid);
  const t0 = performance.now();
  const out = await run("bash", ["-c", script], "curl pipeline");
  const seconds = (performance.now() - t0) / 1000;
  // `times`: line 2 is the children's user and system time, e.g. "0m1.234s 0m0.567s".
  const line = out.trim().split("\n")[1];
  const cpu = [...line.matchAll(/(\d+)m([\d.]+)s/g)]
    .reduce((sum, x) => sum + Number(x[1]) * 60 + Number(x[2]), 0);
  const serverCpu = (await cpuSeconds(serverPid)) - s0;
  const md5 = (await Deno.readTextFile(join(dir, "curl.md5"))).split(" ")[0];
  const sha = (await Deno.readTextFile(join(dir, "curl.sha256"))).split(" ")[0];
  return { seconds, cpu, serverCpu, md5, sha };
}

async function receiverRun(
  url: string,
  manifest: string,
  target: string,
  serverPid: number,
  inflight: number,
  md5Threads: number,
  code: string,
  ticket?: string,
): Promise<Sample> {
  if (!ticket) await settle(target); // a relay's downstream: the relay run settled it
  const s0 = await cpuSeconds(serverPid);
  const out = await run(Deno.execPath(), [
    "run",
    "-A",
    new URL(import.meta.url).pathname,
    "--receive",
    url,
    "--manifest",
    manifest,
    "--target",
    target,
    "--inflight",
    String(inflight),
    "--md5-threads",
    String(md5Threads),
    "--code",
    code,
    ...(ticket ? ["--ticket", ticket] : []),
  ], "receiver");
  const serverCpu = (await cpuSeconds(serverPid)) - s0;
  const r = JSON.parse(out.trim().split("\n").at(-1)!);
  return { seconds: r.seconds, cpu: r.cpu, serverCpu, rss: r.rss, readBack: r.readBack };
}

/** MD5 + SHA-256 of `total` bytes on one thread, in 1 MiB updates: seconds. */
function hashLimit(total: number): number {
  const buf = new Uint8Array(64 << 20);
  for (let p = 0; p < buf.length; p += 1 << 16) randomFillSync(buf, p, 1 << 16);
  const md5 = createHash("md5");
  const sha = createHash("sha256");
  const t0 = performance.now();
  for (let done = 0; done < total;) {
    for (let p = 0; p < buf.length && done < total; p += 1 << 20, done += 1 << 20) {
      const piece = buf.subarray(p, p + (1 << 20));
      md5.update(piece);
      sha.update(piece);
    }
  }
  md5.digest();
  sha.digest();
  return (performance.now() - t0) / 1000;
}

/** The same with MD5 on a Worker beside SHA-256 on this thread (the client's own split). */
async function hashLimitTwoThreads(total: number): Promise<number> {
  const piece = 1 << 20;
  const hasher = new Md5Hasher(1);
  const free: ArrayBuffer[] = Array.from({ length: 8 }, () => {
    const b = new Uint8Array(piece);
    for (let p = 0; p < piece; p += 1 << 16) randomFillSync(b, p, 1 << 16);
    return b.buffer;
  });
  const sha = createHash("sha256");
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  for (let done = 0; done < total; done += piece) {
    while (free.length === 0) await Promise.race(pending);
    const buf = free.pop()!;
    sha.update(new Uint8Array(buf));
    const p: Promise<void> = hasher.md5(buf, piece).then((r) => {
      free.push(r.buffer);
      pending.splice(pending.indexOf(p), 1);
    });
    pending.push(p);
  }
  await Promise.all(pending);
  sha.digest();
  const seconds = (performance.now() - t0) / 1000;
  hasher.close();
  return seconds;
}

async function startServer(
  slices: string,
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "scripts/serve_slices.ts"), slices],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("The chunk server exited before it listened");
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return {
    url: text.trim(),
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "1G" },
      runs: { type: "string", default: "3" },
      "chunk-size": { type: "string", default: "1M" },
      inflight: { type: "string", default: "4" },
      "md5-threads": { type: "string", default: "1" },
      variants: { type: "boolean", default: false },
      compare: { type: "string" },
      dir: { type: "string" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
      // Child mode (one Receiver run in its own process).
      receive: { type: "string" },
      manifest: { type: "string" },
      target: { type: "string" },
      code: { type: "string", default: ROOT },
      ticket: { type: "string" },
      relay: { type: "string" },
      "ticket-key": { type: "string" },
    },
  });
  if (values.help) {
    console.log(
      [
        "bench:client: one client against curl | tee >(md5sum) >(sha256sum) > target, same run",
        "",
        "USAGE:",
        "  deno task bench:client [options]",
        "",
        "OPTIONS:",
        "  --size SIZE         Image size (default: 1G)",
        "  --runs N            Runs per row; medians are printed (default: 3)",
        "  --chunk-size SIZE   Chunk size of the slices (default: 1M)",
        "  --inflight N        Client requests in flight (default: 4)",
        "  --md5-threads N     Client MD5 worker threads, 0 = main thread (default: 1)",
        "  --variants          Also run: 1 and 8 in flight, MD5 on main, MD5 on 2 workers",
        "  --compare DIR       Also run the receiver of the checkout at DIR, alternating (A/B)",
        "  --dir DIR           Work folder (kept); default: a temporary one, removed",
        "  --keep              Keep the temporary work folder",
        "  -h, --help          Show this help and exit",
      ].join("\n"),
    );
    return 0;
  }
  if (values.receive) {
    await receiveChild({
      url: values.receive,
      manifest: values.manifest!,
      target: values.target!,
      inflight: Number(values.inflight),
      md5Threads: Number(values["md5-threads"]),
      code: values.code!,
      ticket: values.ticket,
    });
    return 0;
  }
  if (values.relay) {
    await relayChild({
      url: values.relay,
      manifest: values.manifest!,
      target: values.target!,
      inflight: Number(values.inflight),
      md5Threads: Number(values["md5-threads"]),
      ticketKey: values["ticket-key"]!,
      code: values.code!,
    });
    return 0;
  }
  const size = parseSize(values.size!);
  const runs = Number(values.runs);
  const chunkSize = parseSize(values["chunk-size"]!);
  const inflight = Number(values.inflight);
  const md5Threads = Number(values["md5-threads"]);
  const dir = values.dir ?? await Deno.makeTempDir({ prefix: "cascade-bench-client-" });
  await Deno.mkdir(dir, { recursive: true });
  const image = join(dir, "image.img");
  const slices = join(dir, "slices");
  const log = (s: string) => console.error(`bench: ${s}`);
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    log(`making a ${formatBytes(size)} random image with zero runs in ${dir}`);
    await makeImage(image, size);
    await Deno.remove(slices, { recursive: true }).catch(() => {});
    const how = await slice(image, slices, chunkSize);
    log(`sliced with ${how}`);
    const manifestPath = join(slices, "manifest.json");
    const manifest = JSON.parse(await Deno.readTextFile(manifestPath));
    server = await startServer(slices);
    log(`chunk server ${server.url} (pid ${server.pid})`);

    const variants: { label: string; inflight: number; md5Threads: number; code: string }[] = [
      {
        label: `cascade receiver (${inflight} in flight, SHA-256 per chunk)`,
        inflight,
        md5Threads,
        code: ROOT,
      },
    ];
    if (values.compare) {
      const code = resolve(values.compare);
      await Deno.stat(join(code, "roles/data/mod.ts")).catch((cause) => {
        throw new Error(`Invalid --compare "${code}": it has no roles/data/mod.ts`, { cause });
      });
      variants.push({ label: `  the same, code at ${code}`, inflight, md5Threads, code });
    }
    if (values.variants) {
      variants.push(
        { label: "  variant: 1 request in flight", inflight: 1, md5Threads, code: ROOT },
        { label: "  variant: MD5 on the main thread", inflight, md5Threads: 0, code: ROOT },
        { label: "  variant: MD5 on 2 workers", inflight, md5Threads: 2, code: ROOT },
        { label: "  variant: 8 requests in flight", inflight: 8, md5Threads, code: ROOT },
      );
    }
    const curl: Sample[] = [];
    const rx: Sample[][] = variants.map(() => []);
    // The relay row, and with --compare the other checkout's relay (both its relay and its
    // downstream), alternating in each run.
    const relayCodes = [ROOT, ...variants.filter((v) => v.code !== ROOT).map((v) => v.code)];
    const relaysOf: RelaySample[][] = relayCodes.map(() => []);
    const relays = relaysOf[0];
    const floors: FloorSample[] = [];
    const target = join(dir, "target.img");
    const relayTarget = join(dir, "relay.img");
    for (let i = 0; i < runs; i++) {
      const c = await curlRun(server.url, dir, target, server.pid);
      if (c.md5 !== manifest.md5 || c.sha !== manifest.sha256) {
        throw new Error(
          `The curl pipeline got other hashes than the manifest's: ${c.md5} ${c.sha}`,
        );
      }
      curl.push(c);
      log(`run ${i + 1}: curl ${(size / 1e6 / c.seconds).toFixed(0)} MB/s`);
      // Every other run in reverse order, so no variant always runs just after curl.
      const order = variants.map((_, v) => v);
      if (i % 2 === 1) order.reverse();
      for (const v of order) {
        const s = await receiverRun(
          server.url,
          manifestPath,
          target,
          server.pid,
          variants[v].inflight,
          variants[v].md5Threads,
          variants[v].code,
        );
        rx[v].push(s);
        log(
          `run ${i + 1}: ${variants[v].label.trim()} ${(size / 1e6 / s.seconds).toFixed(0)} MB/s`,
        );
        if (i === 0) {
          await run("cmp", [image, target], "comparing the received image");
          log(`run 1: ${variants[v].label.trim()}: received image is byte-identical`);
        }
      }
      for (const [k, code] of relayCodes.entries()) {
        await settle(target);
        await settle(relayTarget);
        const r = await relayRun({
          script: new URL(import.meta.url).pathname,
          url: server.url,
          manifest: manifestPath,
          target: relayTarget,
          serverPid: server.pid,
          inflight,
          md5Threads,
          code,
          cpuSeconds,
          downstream: async (relayUrl, ticket) =>
            (await receiverRun(
              relayUrl,
              manifestPath,
              target,
              server!.pid,
              inflight,
              md5Threads,
              code,
              ticket,
            )).seconds,
        });
        relaysOf[k].push(r);
        log(
          `run ${i + 1}: relay ${k ? `(${code}) ` : ""}${
            (size / 1e6 / r.seconds).toFixed(0)
          } MB/s to its downstream, ${(r.cpu / (size / 1e9)).toFixed(2)} CPU s/GB`,
        );
      }
      floors.push(await floorRun(size));
      if (i === 0) {
        await run("cmp", [image, relayTarget], "comparing the relay's image");
        await run("cmp", [image, target], "comparing the relay's downstream image");
        log("run 1: relay and downstream images are byte-identical");
      }
    }
    const hashSeconds = median(Array.from({ length: runs }, () => hashLimit(size)));
    const hash2: number[] = [];
    for (let i = 0; i < runs; i++) hash2.push(await hashLimitTwoThreads(size));

    const gb = size / 1e9;
    const curlRate = size / 1e6 / median(curl.map((s) => s.seconds));
    const hashRate = size / 1e6 / hashSeconds;
    const rows: string[][] = [];
    const row = (label: string, samples: Sample[] | null, rate: number, cpu?: number) => {
      const server = samples ? median(samples.map((s) => s.serverCpu)) / gb : undefined;
      const rss = samples?.[0].rss !== undefined ? median(samples.map((s) => s.rss!)) : undefined;
      rows.push([
        label,
        rate.toFixed(0),
        (rate / curlRate).toFixed(2),
        (rate / hashRate).toFixed(2),
        cpu !== undefined ? cpu.toFixed(2) : "-",
        server !== undefined ? server.toFixed(2) : "-",
        rss !== undefined ? formatBytes(rss) : "-",
        samples?.[0].readBack !== undefined
          ? median(samples.map((s) => s.readBack!)).toFixed(2)
          : "-",
      ]);
    };
    row(
      "curl | tee >(md5sum) >(sha256sum) > target",
      curl,
      curlRate,
      median(curl.map((s) => s.cpu)) / gb,
    );
    variants.forEach((v, i) =>
      row(
        v.label,
        rx[i],
        size / 1e6 / median(rx[i].map((s) => s.seconds)),
        median(rx[i].map((s) => s.cpu)) / gb,
      )
    );
    relaysOf.forEach((rs, k) =>
      row(
        k ? `  the same, code at ${relayCodes[k]}` : "cascade relay: receive + serve 1 downstream",
        rs,
        size / 1e6 / median(rs.map((r) => r.seconds)),
        median(rs.map((r) => r.cpu)) / gb,
      )
    );
    row(
      "loopback floor: a plain TCP sender of as many bytes",
      null,
      size / 1e6 / median(floors.map((f) => f.seconds)),
      median(floors.map((f) => f.cpu)) / gb,
    );
    row("hash limit: MD5 + SHA-256 in memory, 1 thread", null, hashRate, hashSeconds / gb);
    row(
      "  the same, MD5 on a worker (the client's split)",
      null,
      size / 1e6 / median(hash2),
      undefined,
    );
    const head = [
      "",
      "MB/s",
      "x curl",
      "x hash limit",
      "CPU s/GB",
      "server CPU s/GB",
      "peak RSS",
      "read-back s",
    ];
    const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
    const fmt = (r: string[]) =>
      r.map((cell, c) => c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join("  ");
    console.log(
      `\nOne client, one server on loopback: ${formatBytes(size)} image, ${
        formatBytes(chunkSize)
      } chunks, ${
        manifest.chunks.filter((c: { zero: boolean }) => c.zero).length
      } of ${manifest.chunks.length} chunks zero; median of ${runs}`,
    );
    console.log(fmt(head));
    console.log(widths.map((w) => "-".repeat(w)).join("  "));
    for (const r of rows) console.log(fmt(r));
    const cpuPerGb = median(rx[0].map((s) => s.cpu)) / gb;
    console.log(
      `\nAt 1 Gbit/s (125 MB/s) the client needs ${
        (cpuPerGb * 0.125 * 100).toFixed(0)
      }% of one core ` +
        `(CPU s/GB x 0.125 GB/s); it ran at ${
          (size / 1e6 / median(rx[0].map((s) => s.seconds))).toFixed(0)
        } MB/s here.`,
    );
    const relayCpu = median(relays.map((r) => r.cpu)) / gb;
    const floorCpu = median(floors.map((f) => f.cpu)) / gb;
    console.log(
      `A relay at 1 Gbit/s (125 MB/s in and out) needs ${(relayCpu * 0.125 * 100).toFixed(0)}% ` +
        `of one core; it ran at ${
          (size / 1e6 / median(relays.map((r) => r.seconds))).toFixed(0)
        } MB/s here (its downstream's rate).`,
    );
    console.log(
      `Its serving over receiving alone: ${(relayCpu - cpuPerGb).toFixed(2)} CPU s/GB, of which ` +
        `the loopback floor (a plain sender's) is ${floorCpu.toFixed(2)}: ${
          (relayCpu - cpuPerGb - floorCpu).toFixed(2)
        } is the relay's own.`,
    );
    console.log(
      "Notes: the client's time is fetchFrom's (process start excluded; read-back s is the " +
        "readBack() after it, not in MB/s or CPU s/GB); curl's is the whole " +
        "pipeline. CPU s/GB counts every process of the row (curl, tee, md5sum, sha256sum / the " +
        "client's threads); the server's is shown apart. The client skips writing zero chunks " +
        "on a fresh target, curl writes them. The relay row: its MB/s is the downstream's, its CPU " +
        "s/GB the relay process's (receive, verify, write, and serve every chunk once) per GB of " +
        "image; the server CPU is the source's. The loopback floor's CPU s/GB is its sender's alone " +
        "(on loopback it includes the kernel's receive side, which a NIC leaves to the other PC).",
    );
    return 0;
  } finally {
    await server?.stop();
    if (!values.keep && !values.dir) await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main());
