// Benchmark: slicing a random image against this machine's hash limit, measured in the same run.
//   deno task bench:slice [--size 1G] [--runs 3] [--dir /dev/shm] [--chunk-size 1M]
// The image sits in tmpfs (or the page cache), so the disk is out of the picture: what is left
// is hashing, copying and the pipeline. Each slice runs in a child process so that its peak RSS
// is its own.
import { createHash, randomFillSync } from "node:crypto";
import { parseArgs } from "node:util";
import { allocShared, HasherPool } from "../imagetools/hashing.ts";
import { type ImageHasherMode } from "../imagetools/hashing.ts";
import { sliceImage } from "../imagetools/slice.ts";
import { formatBytes, parseCount, parseSize } from "../imagetools/units.ts";

const MB = 1e6;
const MODES: readonly ImageHasherMode[] = ["inline", "pool", "workers"];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Peak resident set of this process in bytes (Linux). */
function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function child(image: string, out: string, chunkSize: number, hasher: ImageHasherMode) {
  const t = performance.now();
  await sliceImage({ image, out, chunkSize, hasher, name: "bench.img" });
  const seconds = (performance.now() - t) / 1000;
  console.log(JSON.stringify({ seconds, rss: peakRss() }));
}

/** MD5 + SHA-256 of the same bytes on this thread, in 1 MiB pieces: seconds for `total`. */
function hashOneCore(buf: Uint8Array, total: number, chunk: number): number {
  const t = performance.now();
  for (let done = 0; done < total;) {
    for (let o = 0; o < buf.length && done < total; o += chunk, done += chunk) {
      const piece = buf.subarray(o, o + chunk);
      createHash("md5").update(piece).digest("hex");
      createHash("sha256").update(piece).digest("hex");
    }
  }
  return (performance.now() - t) / 1000;
}

/** The same work spread over two Workers (several pieces in flight): seconds for `total`. */
async function hashTwoWorkers(buf: Uint8Array, total: number, chunk: number): Promise<number> {
  const pool = new HasherPool({ workers: 2 });
  try {
    const t = performance.now();
    const inFlight = new Set<Promise<unknown>>();
    for (let done = 0, o = 0; done < total; done += chunk, o = (o + chunk) % buf.length) {
      const p: Promise<unknown> = pool.digest(buf.subarray(o, o + chunk)).then(() =>
        inFlight.delete(p)
      );
      inFlight.add(p);
      if (inFlight.size >= 4) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    return (performance.now() - t) / 1000;
  } finally {
    pool.close();
  }
}

async function runChild(
  image: string,
  out: string,
  chunkSize: number,
  hasher: ImageHasherMode,
): Promise<{ seconds: number; rss: number }> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      import.meta.filename!,
      "--child",
      image,
      out,
      String(chunkSize),
      hasher,
    ],
    stdout: "piped",
    stderr: "inherit",
  });
  const r = await cmd.output();
  if (!r.success) throw new Error(`Cannot run a slice benchmark child (exit ${r.code})`);
  const result = JSON.parse(new TextDecoder().decode(r.stdout).trim());
  await Deno.remove(out, { recursive: true });
  return result;
}

async function main() {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "1G" },
      runs: { type: "string", default: "3" },
      dir: { type: "string" },
      "chunk-size": { type: "string", default: "1M" },
      child: { type: "boolean", default: false },
    },
    allowPositionals: true,
  });
  if (values.child) {
    const [image, out, chunk, hasher] = positionals;
    return await child(image, out, Number(chunk), hasher as ImageHasherMode);
  }
  const size = parseSize(values.size!, "--size");
  const runs = parseCount(values.runs!, "--runs", 1, 99);
  const chunkSize = parseSize(values["chunk-size"]!, "--chunk-size");
  const base = values.dir ??
    (await Deno.stat("/dev/shm").then(() => "/dev/shm", () => Deno.env.get("TMPDIR") ?? "/tmp"));
  const dir = await Deno.makeTempDir({ dir: base, prefix: "cascade-bench-slice-" });
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
    const mem = allocShared(Math.min(size, 64 * 1024 * 1024));
    randomFillSync(mem);
    const one: number[] = [];
    const two: number[] = [];
    const slices: Record<ImageHasherMode, { seconds: number; rss: number }[]> = {
      inline: [],
      pool: [],
      workers: [],
    };
    for (let r = 0; r < runs; r++) {
      console.error(`Run ${r + 1} of ${runs} ...`);
      one.push(hashOneCore(mem, size, chunkSize));
      two.push(await hashTwoWorkers(mem, size, chunkSize));
      for (const mode of MODES) {
        slices[mode].push(await runChild(image, `${dir}/out-${mode}-${r}`, chunkSize, mode));
      }
    }

    const limit = size / median(one);
    const rows: string[][] = [];
    const row = (what: string, secs: number[], rss?: number) => {
      const rate = size / median(secs);
      rows.push([
        what,
        median(secs).toFixed(2),
        (rate / MB).toFixed(0),
        (rate / limit).toFixed(2),
        rss === undefined ? "-" : formatBytes(rss),
        secs.map((t) => (size / t / MB).toFixed(0)).join(" "),
      ]);
    };
    row("hash limit: MD5+SHA-256, 1 core", one);
    row("hash limit: MD5+SHA-256, 2 workers", two);
    const labels: Record<ImageHasherMode, string> = {
      inline: "slice, all hashing on the main thread",
      pool: "slice, chunks on 2 workers, image on main",
      workers: "slice, 2 workers, equal shares (default)",
    };
    for (const mode of MODES) {
      row(labels[mode], slices[mode].map((s) => s.seconds), median(slices[mode].map((s) => s.rss)));
    }

    const head = ["", "median s", "MB/s", "x 1-core limit", "peak RSS", "each run MB/s"];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: string[]) =>
      `| ${cells.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(" | ")} |`;
    console.log(
      `Slicing ${formatBytes(size)} (${
        formatBytes(chunkSize)
      } chunks, random data, in ${base}), median of ${runs}:`,
    );
    console.log(line(head));
    console.log(
      `|${widths.map((w, i) => (i ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2))).join("|")}|`,
    );
    for (const r of rows) console.log(line(r));
    // Slicing hashes every byte twice (each chunk, and the whole image for the manifest), so
    // with two cores its ceiling is half the two-worker hash rate.
    const ceiling = size / median(two) / 2;
    const best = size / median(slices.workers.map((s) => s.seconds));
    console.log(
      `Every byte is hashed twice (chunk + whole image): ceiling on 2 cores = ${
        (ceiling / MB).toFixed(0)
      } MB/s (${(ceiling / limit).toFixed(2)} x 1-core limit); the default reaches ${
        (100 * best / ceiling).toFixed(0)
      }% of it.`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
