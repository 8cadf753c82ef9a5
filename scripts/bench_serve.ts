// Benchmark: what a finished PC sends a newcomer, and its CPU for it (serve_pack.ts):
//   deno task bench:serve [--size 1GiB] [--runs 3] [--compare DIR,DIR] [--dir /tmp] [--keep]
// The image is this machine's own files (bench_disks.ts' systemFiles) laid end to end, sliced
// once; it must be well past a PC's kept window of received frames (RELAY_KEEP_BYTES, 128 MiB),
// so most of what the finished PC serves comes from its disk. Real processes on loopback, as
// bench:reimage starts them: a master, a fake server, PC "a" that images itself from the fake
// server; once a is verified the fake server is stopped, and newcomer "b" images itself from a.
// Rows: b's chunk bytes received (what a sent), a's CPU seconds per GB of image served while b
// fetched, b's time; medians of --runs. --compare runs other checkouts' cascade.ts (every
// process of theirs) in turn with this one, same slices, in the same run.
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { chunkLength, type Manifest, sliceImage } from "../imagetools/mod.ts";
import { run } from "../imagetools/fs/testkit.ts";
import { LabProcesses } from "../roles/demo/mod.ts";
import { pick, say, systemFiles } from "./bench_disks.ts";
import { startSeeded } from "./bench_reimage.ts";
import { procCpu } from "./proc_stats.ts";
import { parseSize } from "../imagetools/kit/mod.ts";

const MB = 1e6;

const HELP = `bench:serve: the bytes and CPU of a finished PC serving a newcomer from its disk

USAGE
  deno task bench:serve [--size 1GiB] [--runs 3] [--compare DIR,DIR] [--dir /tmp] [--keep]

OPTIONS
  --size SIZE    the image: this machine's files end to end (default 1GiB; keep it well past
                 the 128 MiB kept window)
  --runs N       runs of each checkout, interleaved; medians
  --compare DIRS other checkouts (comma separated), each run in turn with this one
  --dir DIR      where the image, slices and disks go (default /tmp)
  --keep         keep the work folder
  -h, --help     this text
`;

/** This machine's files, end to end, cut at `size` bytes. */
async function filesImage(path: string, size: number) {
  using out = await Deno.open(path, { write: true, create: true, truncate: true });
  let left = size;
  for (const f of pick(await systemFiles(), 0, size)) {
    const bytes = await Deno.readFile(f.path).catch(() => new Uint8Array());
    const piece = bytes.subarray(0, Math.min(bytes.length, left));
    for (let w = 0; w < piece.length;) w += await out.write(piece.subarray(w));
    left -= piece.length;
    if (left === 0) break;
  }
  await out.truncate(size);
}

async function waitLog(procs: LabProcesses, name: string, re: RegExp, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = re.exec(await procs.logText(name));
    if (m) return m;
    if (!procs.running(name)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not log ${re} in time:\n${await procs.logText(name)}`);
}

interface Sample {
  /** Chunk bytes the newcomer received (what the finished PC sent). */
  bytes: number;
  /** The finished PC's CPU seconds while the newcomer fetched. */
  cpu: number;
  /** The newcomer's seconds from its start to verified. */
  seconds: number;
}

/** One run: a images itself from the fake server, then b from a. */
async function serveOnce(
  dir: string,
  slices: string,
  tag: string,
  cascade: string | undefined,
  image: string | undefined,
): Promise<Sample> {
  const procs = new LabProcesses(join(dir, "logs"), cascade);
  const disk = (pc: string) => join(dir, `${tag}-${pc}.img`);
  try {
    // --expect 3: the run does not end when b is verified, so a is still there to be read.
    const url = await startSeeded(procs, slices, tag, 3);
    const pc = (name: string) =>
      procs.start(`${name}-${tag}`, [
        ...["client", "--master", url, "--target", disk(name), "--name", name],
        ...["--listen", "127.0.0.1", "--quiet"],
      ]);
    const a = pc("a");
    // A PC logs "finished" when the run ends; "verified" when its disk is.
    const done = (name: string) => new RegExp(`client\\[${name}\\]\\.verified `);
    await waitLog(procs, `a-${tag}`, done("a"));
    // Only a is left to serve: b cannot be given the fake server.
    procs.kill(`fake-${tag}`, "SIGTERM");
    await procs.procs.get(`fake-${tag}`)!.child.status;
    await run("sync", []);
    const c0 = procCpu(a.child.pid);
    const t = performance.now();
    pc("b");
    await waitLog(procs, `b-${tag}`, done("b"));
    const seconds = (performance.now() - t) / 1000;
    const c1 = procCpu(a.child.pid);
    const log = await procs.logText(`b-${tag}`);
    const servers = [...log.matchAll(/client\[b\]\.assigned server=(\S+)/g)].map((x) => x[1]);
    if (servers.join() !== "a") throw new Error(`b was served by ${servers}, not a (${tag})`);
    if (image) {
      await run("cmp", ["-n", String((await Deno.stat(image)).size), image, disk("b")]);
      say(`${tag}: b's disk is byte-identical to the image`);
    }
    return {
      bytes: [...log.matchAll(/client\[b\]\.fetch\.done .* bytes=(\d+)/g)]
        .reduce((n, x) => n + Number(x[1]), 0),
      cpu: c1.user + c1.sys - c0.user - c0.sys,
      seconds,
    };
  } finally {
    await procs.stopAll();
    for (const pc of ["a", "b"]) await Deno.remove(disk(pc)).catch(() => {});
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "1GiB" },
      runs: { type: "string", default: "3" },
      compare: { type: "string" },
      dir: { type: "string", default: "/tmp" },
      keep: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return console.log(HELP);
  const size = parseSize(values.size);
  const codes: (string | undefined)[] = [
    undefined,
    ...(values.compare?.split(",") ?? []).map((d) => join(resolve(d), "cascade.ts")),
  ];
  const dir = await Deno.makeTempDir({ dir: values.dir, prefix: "cascade-bench-serve-" });
  try {
    const image = join(dir, "files.img");
    say(`image: ${(size / MB).toFixed(0)} MB of this machine's files`);
    await filesImage(image, size);
    const { manifest, dir: slices } = await sliceImage({ image, out: join(dir, "slices") });
    const m: Manifest = manifest;
    const nonZero = m.chunks.flatMap((c, i) => (c.zero ? [] : [i]));
    const plain = nonZero.reduce((n, i) => n + chunkLength(m, i), 0);
    const stored = nonZero.reduce((n, i) => n + (m.chunks[i].zstd ?? chunkLength(m, i)), 0);
    const samples: Sample[][] = codes.map(() => []);
    for (let r = 0; r < Number(values.runs); r++) {
      // Every other run in reverse order, so no checkout always runs first.
      const order = codes.map((_, k) => k);
      if (r % 2 === 1) order.reverse();
      for (const k of order) {
        say(`run ${r + 1}: ${codes[k] ?? "this checkout"}`);
        const s = await serveOnce(
          dir,
          slices,
          `c${k}-r${r}`,
          codes[k],
          r === 0 ? image : undefined,
        );
        say(
          `  ${(s.bytes / MB).toFixed(1)} MB sent, ${(s.cpu / (plain / 1e9)).toFixed(2)} CPU s/GB`,
        );
        samples[k].push(s);
      }
    }
    const head = [
      "checkout",
      "bytes a sent b",
      "÷ raw",
      "÷ slices",
      "a's CPU s/GB served",
      "b's time",
    ];
    console.log(
      `\nbench:serve: ${(size / MB).toFixed(0)} MB image of this machine's files, ${
        (plain / MB).toFixed(0)
      } MB in non-zero chunks, ${
        (stored / MB).toFixed(0)
      } MB as sliced (zstd); medians of ${values.runs}`,
    );
    console.log(`| ${head.join(" | ")} |`);
    console.log(`|${head.map(() => "---").join("|")}|`);
    for (const [k, ss] of samples.entries()) {
      const bytes = median(ss.map((s) => s.bytes));
      console.log(
        `| ${codes[k] ?? "this"} | ${(bytes / MB).toFixed(1)} MB | ${
          (bytes / plain).toFixed(3)
        } | ${(bytes / stored).toFixed(2)} | ${
          (median(ss.map((s) => s.cpu)) / (plain / 1e9)).toFixed(2)
        } (${ss.map((s) => (s.cpu / (plain / 1e9)).toFixed(2)).join(", ")}) | ${
          median(ss.map((s) => s.seconds)).toFixed(2)
        } s |`,
      );
    }
  } finally {
    if (!values.keep) await Deno.remove(dir, { recursive: true });
    else console.error(`bench:serve: kept "${dir}"`);
  }
}

if (import.meta.main) await main();
