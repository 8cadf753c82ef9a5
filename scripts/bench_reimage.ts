// Benchmark: re-imaging a PC that holds an older image (bench:bytes' re-image row, or alone):
//   deno run -A scripts/bench_reimage.ts [--scale 1] [--rates 100mbit,1gbit] [--runs 3]
// The Windows-like disk of bench:bytes is the older image. An update changes ~3 % of its used
// data through ntfs-3g, as a month of updates would: 4 KiB pages rewritten here and there in
// existing files (most of it), a few new files, a few deleted; the result is the new image.
// A master, a fake server at each rate (--rate-limit) and one client run as real processes;
// the client images the new slices onto an empty disk (a full image) and onto a disk holding
// the older image as assembled from its slices (the re-image). Rows: chunk bytes received and
// the client's time from start to exit, medians of --runs, and their ratios.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { assembleImage, chunkLength, type Manifest, sliceImage } from "../imagetools/mod.ts";
import { run, withNtfsMount } from "../imagetools/fs/testkit.ts";
import { LabProcesses } from "../roles/demo/mod.ts";
import { buildDisks, type Disk, say } from "./bench_disks.ts";

const MB = 1e6;
const PAGE = 4096;

const HELP = `bench:reimage: re-imaging a PC that holds last month's Windows-like disk

USAGE
  deno task bench:reimage [--scale 1] [--rates 100mbit,1gbit] [--runs 3] [--dir /tmp] [--keep]
                          [--compare DIR]

OPTIONS
  --scale N   the Windows-like disk x N (1: 1 GiB; the issue's disk is 4 GiB: --scale 4)
  --rates R   the fake server's rates (--rate-limit), comma separated
  --runs N    runs of each (full image, re-image) per rate; medians
  --dir DIR   where the disks and slices go (default /tmp)
  --keep      keep the work folder
  --compare DIR  also re-image with another checkout's cascade.ts (e.g. a git worktree of the
              commit before a change), in turn with this one, same disk and slices
  -h, --help  this text
`;

/** A seeded PRNG (mulberry32): the same update on every run of the benchmark. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function filesUnder(dir: string): Promise<{ path: string; size: number }[]> {
  const out: { path: string; size: number }[] = [];
  const entries = [];
  for await (const e of Deno.readDir(dir)) entries.push(e);
  entries.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await filesUnder(p));
    else if (e.isFile) out.push({ path: p, size: (await Deno.stat(p)).size });
  }
  return out;
}

function randomBytes(n: number, rnd: () => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (rnd() * 256) | 0;
  return b;
}

/** Change `share` of the used data in the mounted NTFS at `dir`: 70 % as pages rewritten in
 * place (1-4 per file), 20 % as new files, 10 % deleted. Returns what it did. */
async function update(dir: string, share: number) {
  const rnd = prng(2026);
  const files = (await filesUnder(dir)).filter((f) => f.size >= PAGE);
  const used = files.reduce((n, f) => n + f.size, 0);
  const budget = used * share;
  let pages = 0;
  while (pages * PAGE < budget * 0.7) {
    const f = files[(rnd() * files.length) | 0];
    using file = await Deno.open(f.path, { write: true });
    const n = 1 + ((rnd() * 4) | 0);
    for (let k = 0; k < n; k++) {
      await file.seek(((rnd() * Math.floor(f.size / PAGE)) | 0) * PAGE, Deno.SeekMode.Start);
      await file.write(randomBytes(PAGE, rnd));
      pages++;
    }
  }
  await Deno.mkdir(join(dir, "updates"), { recursive: true });
  let added = 0;
  for (let k = 0; added < budget * 0.2; k++) {
    const n = (16 + ((rnd() * 240) | 0)) * PAGE;
    await Deno.writeFile(join(dir, "updates", `kb${k}.bin`), randomBytes(n, rnd));
    added += n;
  }
  let deleted = 0;
  while (deleted < budget * 0.1) {
    const k = (rnd() * files.length) | 0;
    const [f] = files.splice(k, 1);
    await Deno.remove(f.path);
    deleted += f.size;
  }
  return { used, pages, added, deleted };
}

/** Indices whose chunk differs between two manifests of the same disk (zero ones left out). */
function changedChunks(older: Manifest, newer: Manifest): number[] {
  return newer.chunks.flatMap((c, i) => !c.zero && c.sha256 !== older.chunks[i].sha256 ? [i] : []);
}

/** How many 4 KiB blocks differ in each changed chunk, between two disk files. */
async function blocksChanged(a: string, b: string, m: Manifest, chunks: number[]) {
  using fa = await Deno.open(a);
  using fb = await Deno.open(b);
  const read = async (f: Deno.FsFile, at: number, n: number) => {
    const buf = new Uint8Array(n);
    await f.seek(at, Deno.SeekMode.Start);
    let got = 0;
    while (got < n) got += (await f.read(buf.subarray(got))) ?? n;
    return buf;
  };
  const counts: number[] = [];
  for (const i of chunks) {
    const n = chunkLength(m, i);
    const [x, y] = [await read(fa, i * m.chunkSize, n), await read(fb, i * m.chunkSize, n)];
    let c = 0;
    for (let p = 0; p < n; p += PAGE) {
      for (let k = p; k < Math.min(n, p + PAGE); k++) {
        if (x[k] !== y[k]) {
          c++;
          break;
        }
      }
    }
    counts.push(c);
  }
  return counts;
}

/** A master (relay mode, ending once `expect` PCs are verified) and a fake server with
 * `fakeArgs`, on loopback, named by `tag`: the master's URL once the fake server registered. */
export async function startSeeded(
  procs: LabProcesses,
  slices: string,
  tag: string,
  expect: number,
  fakeArgs: string[] = [],
): Promise<string> {
  const url = await procs.startMaster(
    [
      ...["--slices", slices, "--host", "127.0.0.1", "--port", "0"],
      ...["--mode", "relay", "--expect", String(expect), "--linger", "0"],
    ],
    30_000,
    `master-${tag}`,
  );
  procs.start(`fake-${tag}`, [
    ...["fake-server", "--master", url, "--slices", slices, "--name", "fake"],
    ...["--listen", "127.0.0.1", ...fakeArgs],
  ]);
  await new Promise((r) => setTimeout(r, 500)); // the fake server registers first
  return url;
}

/** One client imaging `slices` onto `target` from a fake server at `rate`: bytes, seconds. */
export async function imageOnce(
  dir: string,
  slices: string,
  target: string,
  rate: string,
  tag: string,
  cascade?: string,
) {
  const procs = new LabProcesses(join(dir, "logs"), cascade);
  try {
    const url = await startSeeded(procs, slices, tag, 1, ["--rate-limit", rate]);
    const t = performance.now();
    const pc = procs.start(`pc-${tag}`, [
      ...["client", "--master", url, "--target", target, "--name", "pc"],
      ...["--listen", "127.0.0.1", "--quiet"],
    ]);
    const status = await pc.child.status;
    const seconds = (performance.now() - t) / 1000;
    const log = await procs.logText(`pc-${tag}`);
    const fin = /client\[pc\]\.finished .*verified=true.* received=(\d+)/.exec(log);
    if (status.code !== 0 || !fin) throw new Error(`The client failed (${tag}):\n${log}`);
    return { bytes: Number(fin[1]), seconds };
  } finally {
    await procs.stopAll();
  }
}

async function fsyncFile(path: string) {
  using f = await Deno.open(path, { read: true, write: true });
  await f.sync();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The re-image rows for the Windows-like disk `disk` (its parts' files still in place). */
export async function reimageRows(
  disk: Disk,
  dir: string,
  o: { rates: string[]; runs: number; share?: number; compare?: string },
): Promise<{ table: string[][]; notes: string[] }> {
  const ntfs = disk.parts.find((p) => p.type === "0700")!;
  const newNtfs = join(dir, "w-ntfs-new.img");
  await Deno.copyFile(ntfs.image!, newNtfs);
  say("re-image: updating the NTFS (~3 % of its used data)");
  const did = await withNtfsMount(newNtfs, dir, (mnt) => update(mnt, o.share ?? 0.03));
  const newDisk = join(dir, "windows-new.img");
  await run("cp", ["--sparse=always", disk.path, newDisk]);
  await run("dd", [
    `if=${newNtfs}`,
    `of=${newDisk}`,
    "bs=1M",
    `seek=${ntfs.start}`,
    "oflag=seek_bytes",
    "conv=notrunc,sparse",
    "status=none",
  ]);
  const older = await sliceImage({ image: disk.path, out: join(dir, "old.cascade"), force: true });
  const newer = await sliceImage({ image: newDisk, out: join(dir, "new.cascade"), force: true });
  const pcOld = join(dir, "pc-old.img");
  await assembleImage({ slices: older.dir, out: pcOld, force: true });
  const changed = changedChunks(older.manifest, newer.manifest);
  // Against the new image as sliced (free blocks zeroed), not the raw disk: its free blocks
  // still hold deleted files, which no PC is sent.
  const pcNew = join(dir, "pc-new.img");
  await assembleImage({ slices: newer.dir, out: pcNew, force: true });
  const blocks = await blocksChanged(pcOld, pcNew, newer.manifest, changed);
  await Deno.remove(pcNew);
  const wholeBytes = changed.reduce((n, i) => n + chunkLength(newer.manifest, i), 0);
  const notes = [
    `update: ${(did.pages * PAGE / MB).toFixed(1)} MB as ${did.pages} rewritten 4 KiB pages, ${
      (did.added / MB).toFixed(1)
    } MB new files, ${(did.deleted / MB).toFixed(1)} MB deleted, of ${
      (did.used / MB).toFixed(0)
    } MB of files (${
      ((did.pages * PAGE + did.added + did.deleted) / did.used * 100).toFixed(1)
    } %)`,
    `${changed.length} of ${
      newer.manifest.chunks.filter((c) => !c.zero).length
    } non-zero chunks changed (${(wholeBytes / MB).toFixed(1)} MB as whole chunks); ${
      blocks.filter((b) => b <= 4).length
    } of them with <= 4 changed 4 KiB blocks; ${blocks.reduce((a, b) => a + b, 0)} blocks (${
      (blocks.reduce((a, b) => a + b, 0) * PAGE / MB).toFixed(1)
    } MB) changed in all`,
  ];
  const table: string[][] = [];
  const other = o.compare ? join(o.compare, "cascade.ts") : undefined;
  for (const rate of o.rates) {
    const full: { bytes: number; seconds: number }[] = [];
    const again: { bytes: number; seconds: number }[] = [];
    const theirs: number[] = [];
    for (let r = 0; r < o.runs; r++) {
      say(`re-image at ${rate}: run ${r + 1} of ${o.runs}`);
      const empty = join(dir, "pc-full.img");
      await Deno.remove(empty).catch(() => {});
      full.push(await imageOnce(dir, newer.dir, empty, rate, `full-${rate}-${r}`));
      await Deno.remove(empty);
      const used = join(dir, "pc-used.img");
      const reimage = async (label: string, cascade?: string) => {
        await run("cp", ["--sparse=always", pcOld, used]);
        // The copy's dirty pages are this benchmark's setup, not the PC's: on the disk before
        // the clock starts (the client's sync at its end paid ~0.8 s for them).
        await fsyncFile(used);
        const got = await imageOnce(dir, newer.dir, used, rate, `${label}-${rate}-${r}`, cascade);
        await Deno.remove(used);
        return got;
      };
      // With --compare the two checkouts take turns going first: the re-image right after the
      // full image was ~1 s slower, whichever checkout it was.
      if (other && r % 2 === 1) theirs.push((await reimage("other", other)).seconds);
      again.push(await reimage("again"));
      if (other && r % 2 === 0) theirs.push((await reimage("other", other)).seconds);
    }
    const [fb, fs] = [median(full.map((x) => x.bytes)), median(full.map((x) => x.seconds))];
    const [ab, as] = [median(again.map((x) => x.bytes)), median(again.map((x) => x.seconds))];
    table.push([
      rate,
      `${(fb / MB).toFixed(1)} MB`,
      `${fs.toFixed(2)} s`,
      `${(ab / MB).toFixed(2)} MB`,
      `${as.toFixed(2)} s`,
      `${(ab / fb).toFixed(3)} x`,
      `${(as / fs).toFixed(2)} x`,
      `${(ab / wholeBytes).toFixed(2)} x`,
      ...(other ? [`${median(theirs).toFixed(2)} s (${(median(theirs) / fs).toFixed(2)} x)`] : []),
    ]);
    if (other) {
      notes.push(
        `re-image runs at ${rate}: this ${
          again.map((x) => x.seconds.toFixed(2)).join(", ")
        } s; --compare ${theirs.map((x) => x.toFixed(2)).join(", ")} s`,
      );
    }
  }
  return { table, notes };
}

export const REIMAGE_HEAD = [
  "rate",
  "full image: bytes",
  "time",
  "re-image: bytes",
  "time",
  "bytes ÷ full",
  "time ÷ full",
  "bytes ÷ changed whole chunks",
];

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      scale: { type: "string", default: "1" },
      rates: { type: "string", default: "100mbit,1gbit" },
      runs: { type: "string", default: "3" },
      dir: { type: "string", default: "/tmp" },
      keep: { type: "boolean" },
      compare: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return console.log(HELP);
  const dir = await Deno.makeTempDir({ dir: values.dir, prefix: "cascade-bench-reimage-" });
  try {
    const [disk] = await buildDisks(dir, Number(values.scale), ["windows"]);
    const { table, notes } = await reimageRows(disk, dir, {
      rates: values.rates.split(","),
      runs: Number(values.runs),
      ...(values.compare ? { compare: values.compare } : {}),
    });
    const head = values.compare ? [...REIMAGE_HEAD, "--compare: re-image time"] : REIMAGE_HEAD;
    console.log(`| ${head.join(" | ")} |`);
    console.log(`|${head.map(() => "---").join("|")}|`);
    for (const r of table) console.log(`| ${r.join(" | ")} |`);
    for (const n of notes) console.log(`- ${n}`);
  } finally {
    if (!values.keep) await Deno.remove(dir, { recursive: true });
    else console.error(`bench:reimage: kept "${dir}"`);
  }
}

if (import.meta.main) await main();
