// Benchmark: slicing a random image against this machine's hash limit, measured in the same run.
//   deno task bench:slice [--size 1G] [--runs 3] [--dir /dev/shm] [--out-dir DIR] [--chunk-size 1M]
// The image sits in tmpfs (or the page cache), so reading it never waits for the disk: what is
// left is hashing, copying, writing the chunk files and the pipeline. The chunk files go to
// --out-dir (default: beside the image, as `cascade slice` does). Each slice runs in a child
// process so that its peak RSS and CPU time are its own.
//
// Chunk files in --out-dir are kept until the end (size x 4 x runs of disk): on ext4, creating
// files just after deleting as many makes every new inode scan past the recently deleted ones
// (~0.7 CPU s per GiB of 1 MiB chunks here), a cost of the benchmark's churn, not of slicing.
import { createHash, randomFillSync } from "node:crypto";
import process from "node:process";
import { parseArgs } from "node:util";
import { type ImageHasherMode } from "../imagetools/hashing/mod.ts";
import { sliceImage } from "../imagetools/mod.ts";
import { formatBytes, parseCount, parseSize } from "../imagetools/kit/mod.ts";

const MB = 1e6;

/** What one row slices with: a hashing layout and how chunk files are written. */
interface Variant {
  key: string;
  label: string;
  hasher: ImageHasherMode;
  direct: boolean;
}

const VARIANTS: readonly Variant[] = [
  { key: "inline", label: "slice, all hashing on main, O_DIRECT", hasher: "inline", direct: true },
  {
    key: "split",
    label: "slice, 2 workers, node:crypto only, O_DIRECT",
    hasher: "split",
    direct: true,
  },
  {
    key: "buffered",
    label: "slice, 2 workers + SIMD MD5, buffered writes",
    hasher: "batch",
    direct: false,
  },
  {
    key: "batch",
    label: "slice, 2 workers + SIMD MD5, O_DIRECT (default)",
    hasher: "batch",
    direct: true,
  },
];

interface ChildResult {
  seconds: number;
  /** user + system CPU seconds of the whole child process (every thread). */
  cpu: number;
  rss: number;
  /** The chunk files really went around the page cache. */
  direct: boolean;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Peak resident set of this process in bytes (Linux). */
function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function child(v: Variant, image: string, out: string, chunkSize: number) {
  const cpu0 = process.cpuUsage();
  const t = performance.now();
  const r = await sliceImage({
    image,
    out,
    chunkSize,
    hasher: v.hasher,
    direct: v.direct,
    name: "bench.img",
  });
  const seconds = (performance.now() - t) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const result: ChildResult = {
    seconds,
    cpu: (cpu.user + cpu.system) / 1e6,
    rss: peakRss(),
    direct: r.direct,
  };
  console.log(JSON.stringify(result));
}

/** The given algorithms over the same bytes on this thread, in `chunk` pieces: seconds for
 * `total` bytes. */
function hashOneCore(buf: Uint8Array, total: number, chunk: number, algos: string[]): number {
  const t = performance.now();
  for (let done = 0; done < total;) {
    for (let o = 0; o < buf.length && done < total; o += chunk, done += chunk) {
      const piece = buf.subarray(o, o + chunk);
      for (const a of algos) createHash(a).update(piece).digest("hex");
    }
  }
  return (performance.now() - t) / 1000;
}

async function runChild(
  v: Variant,
  image: string,
  out: string,
  chunkSize: number,
  keep: boolean,
): Promise<ChildResult> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", import.meta.filename!, "--child", v.key, image, out, String(chunkSize)],
    stdout: "piped",
    stderr: "inherit",
  });
  const r = await cmd.output();
  if (!r.success) throw new Error(`Cannot run a slice benchmark child (exit ${r.code})`);
  const result = JSON.parse(new TextDecoder().decode(r.stdout).trim());
  if (!keep) await Deno.remove(out, { recursive: true });
  return result;
}

async function main() {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "1G" },
      runs: { type: "string", default: "3" },
      dir: { type: "string" },
      "out-dir": { type: "string" },
      "chunk-size": { type: "string", default: "1M" },
      child: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    allowPositionals: true,
  });
  if (values.help) {
    console.log([
      "bench:slice: slicing speed against this machine's MD5 + SHA-256 limit on one core",
      "",
      "USAGE:",
      "  deno task bench:slice [--size 1G] [--runs 3] [--chunk-size 1M] [--dir D] [--out-dir D]",
      "",
      "OPTIONS:",
      "  --size SIZE        random image to slice (default 1G)",
      "  --runs N           runs per variant, the median is shown (default 3)",
      "  --chunk-size SIZE  chunk size (default 1M)",
      "  --dir DIR          where the image sits (default /dev/shm, else $TMPDIR or /tmp)",
      "  --out-dir DIR      where chunk files go (default: beside the image)",
    ].join("\n"));
    return;
  }
  if (values.child) {
    const [key, image, out, chunk] = positionals;
    return await child(VARIANTS.find((v) => v.key === key)!, image, out, Number(chunk));
  }
  const size = parseSize(values.size!, "--size");
  const runs = parseCount(values.runs!, "--runs", 1, 99);
  const chunkSize = parseSize(values["chunk-size"]!, "--chunk-size");
  const base = values.dir ??
    (await Deno.stat("/dev/shm").then(() => "/dev/shm", () => Deno.env.get("TMPDIR") ?? "/tmp"));
  const dir = await Deno.makeTempDir({ dir: base, prefix: "cascade-bench-slice-" });
  const outDir = values["out-dir"] === undefined
    ? dir
    : await Deno.makeTempDir({ dir: values["out-dir"], prefix: "cascade-bench-slice-out-" });
  try {
    const image = `${dir}/bench.img`;
    console.error(`Making a ${formatBytes(size)} random image in ${dir} ...`);
    {
      const f = await Deno.open(image, { write: true, create: true, truncate: true });
      const block = new Uint8Array(8 * 1024 * 1024);
      for (let done = 0; done < size; done += block.length) {
        randomFillSync(block);
        const n = Math.min(block.length, size - done);
        let w = 0;
        while (w < n) w += await f.write(block.subarray(w, n));
      }
      f.close();
    }

    // Hash limit: in memory, the same amount of bytes as the image (in a 64 MiB loop).
    const mem = new Uint8Array(Math.min(size, 64 * 1024 * 1024));
    randomFillSync(mem);
    const one: number[] = [];
    const md5: number[] = [];
    const slices = new Map<string, ChildResult[]>(VARIANTS.map((v) => [v.key, []]));
    for (let r = 0; r < runs; r++) {
      console.error(`Run ${r + 1} of ${runs} ...`);
      one.push(hashOneCore(mem, size, chunkSize, ["md5", "sha256"]));
      md5.push(hashOneCore(mem, size, chunkSize, ["md5"]));
      for (const v of VARIANTS) {
        const out = `${outDir}/out-${v.key}-${r}`;
        slices.get(v.key)!.push(await runChild(v, image, out, chunkSize, outDir !== dir));
      }
    }

    const limit = size / median(one);
    const rows: string[][] = [];
    const row = (what: string, secs: number[], runs?: ChildResult[]) => {
      const rate = size / median(secs);
      rows.push([
        what,
        median(secs).toFixed(2),
        (rate / MB).toFixed(0),
        (rate / limit).toFixed(2),
        runs ? median(runs.map((s) => s.cpu)).toFixed(2) : "-",
        runs ? formatBytes(median(runs.map((s) => s.rss))) : "-",
        secs.map((t) => (size / t / MB).toFixed(0)).join(" "),
      ]);
    };
    row("hash limit: MD5+SHA-256, 1 core", one);
    row("MD5 alone, 1 core", md5);
    for (const v of VARIANTS) {
      const runs = slices.get(v.key)!;
      const fell = v.direct && runs.some((s) => !s.direct) ? " (fell back to buffered)" : "";
      row(v.label + fell, runs.map((s) => s.seconds), runs);
    }

    const head = [
      "",
      "median s",
      "MB/s",
      "x 1-core limit",
      "CPU s",
      "peak RSS",
      "each run MB/s",
    ];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: string[]) =>
      `| ${cells.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(" | ")} |`;
    console.log(
      `Slicing ${formatBytes(size)} (${
        formatBytes(chunkSize)
      } chunks, random data, image in ${base}, chunk files in ${
        values["out-dir"] ?? base
      }), median of ${runs}:`,
    );
    console.log(line(head));
    console.log(
      `|${widths.map((w, i) => (i ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2))).join("|")}|`,
    );
    for (const r of rows) console.log(line(r));
    // The whole-image MD5 is one chain of dependent steps over every byte: no thread can share
    // it, so one core's MD5 rate bounds any slice, however the rest is spread.
    const ceiling = size / median(md5);
    const best = size / median(slices.get("batch")!.map((s) => s.seconds));
    console.log(
      `Ceiling: the whole-image MD5 runs on one core: ${(ceiling / MB).toFixed(0)} MB/s (${
        (ceiling / limit).toFixed(2)
      } x the 1-core limit); the default slice reaches ${
        (100 * best / ceiling).toFixed(0)
      }% of it.`,
    );
    console.log(
      `Four node:crypto passes over every byte (chunk and whole-image MD5 and SHA-256) cost ${
        (2 * median(one)).toFixed(2)
      } CPU s; the default does the chunk MD5s eight chunks at a time in WebAssembly SIMD lanes.`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
    if (outDir !== dir) await Deno.remove(outDir, { recursive: true });
  }
}

if (import.meta.main) await main();
