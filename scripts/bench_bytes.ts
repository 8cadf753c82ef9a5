// Benchmark: bytes on the wire for three disks made by the real tools (the issue's kinds, at a
// smaller size), each against partclone (used blocks) and partclone | zstd -3 measured in the
// same run:
//   deno task bench:bytes [--scale 1] [--runs 3] [--dir /tmp] [--keep]
// - Windows-like (GPT): FAT32 EFI + MSR + NTFS, NTFS filled with this machine's /usr files to
//   ~45 % and a third of them deleted (~30 % used);
// - Linux + swap (GPT): ext4 filled and a third deleted likewise + a swap partition full of old
//   data;
// - fresh install (MBR): ext4 at ~29 %, nothing deleted.
// Rows: raw; what Cascade sent before this issue (`slice --raw --uncompressed`: every non-zero
// chunk); free blocks zeroed, uncompressed (`--uncompressed`: the non-zero chunks); what it sends
// now (`slice`: the non-zero chunks as stored, zstd at the default level, raw where that does
// not shrink them); the same chunks at zstd -3 (node:zlib, for the choice of level); partclone's
// images of each file system (swap counted as its 4 KiB header, other partitions and the tables
// raw); the same through `zstd -3`. Times: `cascade slice` (compressed chunk files, both hashes)
// against `partclone | zstd -3 -T1` of every partition, medians of --runs. Partitions are copied
// to files of their own for partclone first (on a real disk they are devices), not timed.
import { constants, zstdCompressSync } from "node:zlib";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  chunkLength,
  DEFAULT_ZSTD_LEVEL,
  type Manifest,
  openSlices,
  sliceImage,
  storedLength,
} from "../imagetools/mod.ts";
import { extract, run } from "../imagetools/fs/testkit.ts";
import { parseCount } from "../imagetools/kit/mod.ts";
import { buildDisks, DISK_KINDS, type DiskKind, say } from "./bench_disks.ts";
import { REIMAGE_HEAD, reimageRows } from "./bench_reimage.ts";
import { LAB_HEAD, labRows } from "./bench_bytes_lab.ts";

const MIB = 1024 * 1024;
const MB = 1e6;

const HELP =
  `bench:bytes: bytes sent for three real-tool disks against partclone and partclone | zstd -3

USAGE
  deno task bench:bytes [--scale 1] [--runs 3] [--rates 100mbit,1gbit] [--dir /tmp] [--keep]

OPTIONS
  --scale N   disk sizes x N (1: Windows-like 1 GiB, Linux + swap 768 MiB, fresh 768 MiB)
  --disks L   which disks, of ${DISK_KINDS.join(",")} (default: windows,linux,fresh;
              windows-in-use: Windows-like with a pagefile.sys and hiberfil.sys of stale memory;
              rhel: XFS + swap, fedora: Btrfs; root: they are filled through a loop device)
  --runs N    timed runs of slice and of partclone | zstd -3 (median)
  --rates R   the re-image row's fake-server rates (scripts/bench_reimage.ts; its own task:
              bench:reimage)
  --dir DIR   where the disks and slices go (default /tmp)
  --keep      keep the work folder
  --no-reimage  leave out the re-image row
  --lab       add the lab row (root): --pcs PCs imaged from the Windows-like disk on the emulated
              LAN at --lab-rate, relay mode, median of --runs (scripts/bench_bytes_lab.ts; its
              own task: bench:bytes:lab)
  --pcs N     the lab row's PCs (default 12)
  --lab-rate R  the lab row's port rate (default 100mbit)
  --pc-dir D  where the lab row's PC disks go (/dev/shm: a disk in memory per PC; default: all
              on this machine's one disk, which then bounds the run)
  -h, --help  this text
`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Bytes the non-zero chunks of a manifest take on the wire (as stored: compressed where the
 * manifest says so) and uncompressed. */
function sentBytes(m: Manifest) {
  let plain = 0;
  let sent = 0;
  for (const [i, c] of m.chunks.entries()) {
    if (c.zero) continue;
    plain += chunkLength(m, i);
    sent += storedLength(m, i);
  }
  return { plain, sent };
}

/** What the non-zero chunks of a slices folder would take each zstd-compressed at `level`. */
async function chunksAtLevel(dir: string, level: number) {
  const slices = await openSlices(dir);
  const m = slices.manifest;
  const sizes = new Map<string, number>();
  let sum = 0;
  for (const [i, c] of m.chunks.entries()) {
    if (c.zero) continue;
    let z = sizes.get(c.sha256);
    if (z === undefined) {
      const bytes = await slices.readChunk(i);
      const out = zstdCompressSync(bytes, {
        params: { [constants.ZSTD_c_compressionLevel]: level },
      });
      z = Math.min(out.length, bytes.length);
      sizes.set(c.sha256, z);
    }
    sum += z;
  }
  return sum;
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const r = await fn();
  return [(performance.now() - t) / 1000, r];
}

async function shell(script: string) {
  await run("bash", ["-c", `set -o pipefail; ${script}`]);
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      scale: { type: "string", default: "1" },
      disks: { type: "string", default: "windows,linux,fresh" },
      runs: { type: "string", default: "3" },
      rates: { type: "string", default: "100mbit,1gbit" },
      dir: { type: "string", default: "/tmp" },
      keep: { type: "boolean" },
      "no-reimage": { type: "boolean" },
      lab: { type: "boolean" },
      pcs: { type: "string", default: "12" },
      "lab-rate": { type: "string", default: "100mbit" },
      "pc-dir": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const scale = Number(values.scale);
  const runs = Number(values.runs);
  if (!(scale > 0 && scale <= 16)) throw new RangeError(`Invalid --scale "${values.scale}": 0..16`);
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`Invalid --runs "${values.runs}"`);
  const kinds = values.disks.split(",").map((k) => {
    if (!(DISK_KINDS as readonly string[]).includes(k)) {
      throw new RangeError(`Invalid --disks "${k}": one of ${DISK_KINDS.join(", ")}`);
    }
    return k as DiskKind;
  });
  const dir = await Deno.makeTempDir({ dir: values.dir, prefix: "cascade-bench-bytes-" });
  try {
    const disks = await buildDisks(dir, scale, kinds);
    // The lab and re-image rows image the Windows-like disk.
    const windows = kinds.includes("windows") ? disks[0] : undefined;
    const rows: string[][] = [];
    const times: string[][] = [];
    for (const d of disks) {
      const size = (await Deno.stat(d.path)).size;
      say(`${d.label}: slicing and partclone`);
      const raw = await sliceImage({
        image: d.path,
        out: join(dir, "raw.cascade"),
        raw: true,
        uncompressed: true,
        force: true,
      });
      const before = sentBytes(raw.manifest);
      const plainSlice = await sliceImage({
        image: d.path,
        out: join(dir, "plain.cascade"),
        uncompressed: true,
        force: true,
      });
      const zeroed = sentBytes(plainSlice.manifest);
      // partclone per file-system partition (copied out first, untimed); the rest raw.
      const parts: string[] = [];
      for (const [i, p] of d.parts.entries()) {
        const file = join(dir, `part${i}.img`);
        if (p.pc) {
          await extract(d.path, p.start, p.size, file);
          parts.push(`partclone.${p.pc} -c -s ${file} -o - 2>/dev/null`);
        }
      }
      // Outside the partclone'd partitions: the tables, MSR and gaps raw; swap as its header.
      const covered = d.parts.filter((p) => p.pc || p.swap).reduce((n, p) => n + p.size, 0);
      let pcBytes = size - covered + d.parts.filter((p) => p.swap).length * 4096;
      let pcZstd = 0;
      // Timed runs alternate: slice, then partclone | zstd -3 (the machine is shared).
      const sliceTimes: number[] = [];
      const pcTimes: number[] = [];
      const pc2Times: number[] = [];
      let sliced = raw;
      for (let r = 0; r < runs; r++) {
        const [t, s] = await timed(() =>
          sliceImage({ image: d.path, out: join(dir, "fs.cascade"), force: true })
        );
        sliceTimes.push(t);
        sliced = s;
        let zsum = 0;
        const t1 = performance.now();
        for (const [k, cmd] of parts.entries()) {
          const out = join(dir, `pc${k}.zst`);
          await shell(`${cmd} | zstd -3 -T1 -q -c > ${out}`);
          zsum += (await Deno.stat(out)).size;
        }
        pcTimes.push((performance.now() - t1) / 1000);
        pcZstd = zsum;
        // zstd on two threads, as a second baseline (the machine has two cores).
        const t2 = performance.now();
        for (const [k, cmd] of parts.entries()) {
          await shell(`${cmd} | zstd -3 -T2 -q -c > ${join(dir, `pc${k}.zst`)}`);
        }
        pc2Times.push((performance.now() - t2) / 1000);
      }
      const now = sentBytes(sliced.manifest);
      const z3 = await chunksAtLevel(plainSlice.dir, 3);
      for (const [k, cmd] of parts.entries()) {
        const out = join(dir, `pc${k}.img`);
        await shell(`${cmd} > ${out}`);
        pcBytes += (await Deno.stat(out)).size;
        await Deno.remove(out);
      }
      // The raw rest through zstd too, for a like-for-like row.
      const rest = d.parts.filter((p) => !p.pc && !p.swap);
      for (const p of rest) {
        const bytes = new Uint8Array(p.size);
        const f = await Deno.open(d.path);
        await f.seek(p.start, Deno.SeekMode.Start);
        let got = 0;
        while (got < p.size) got += (await f.read(bytes.subarray(got))) ?? p.size;
        f.close();
        pcZstd +=
          zstdCompressSync(bytes, { params: { [constants.ZSTD_c_compressionLevel]: 3 } }).length;
      }
      const mb = (n: number) => `${(n / MB).toFixed(1)} MB`;
      rows.push([
        `${d.label}, ${(size / MIB).toFixed(0)} MiB`,
        mb(size),
        mb(before.plain),
        mb(zeroed.plain),
        mb(now.sent),
        mb(z3),
        mb(pcBytes),
        mb(pcZstd),
        `${(now.sent / pcZstd).toFixed(2)} x`,
      ]);
      const ts = median(sliceTimes);
      const tp = median(pcTimes);
      const tp2 = median(pc2Times);
      times.push([
        d.label,
        `${ts.toFixed(1)} s`,
        `${tp.toFixed(1)} s`,
        `${(ts / tp).toFixed(2)} x`,
        `${tp2.toFixed(1)} s`,
        `${(ts / tp2).toFixed(2)} x`,
        `${mb(now.sent)} / ${mb(pcZstd)}`,
      ]);
      await Deno.remove(raw.dir, { recursive: true });
      await Deno.remove(plainSlice.dir, { recursive: true });
      for await (const e of Deno.readDir(dir)) {
        if (e.name.startsWith("part")) await Deno.remove(join(dir, e.name));
      }
    }
    const table = (head: string[], body: string[][]) =>
      [
        `| ${head.join(" | ")} |`,
        `|${head.map(() => "---").join("|")}|`,
        ...body.map((r) => `| ${r.join(" | ")} |`),
      ].join("\n");
    console.log(table([
      "disk",
      "raw",
      "Cascade before (--raw)",
      "free zeroed, uncompressed",
      `Cascade sends now (zstd ${DEFAULT_ZSTD_LEVEL})`,
      "chunks at zstd 3",
      "partclone used",
      "partclone + zstd -3",
      "sends now ÷ partclone + zstd -3",
    ], rows));
    console.log();
    console.log(
      table(
        [
          "disk",
          `slice, zstd ${DEFAULT_ZSTD_LEVEL} (median of ${runs})`,
          "partclone \\| zstd -3 -T1",
          "slice ÷ partclone",
          "partclone \\| zstd -3 -T2",
          "slice ÷ that",
          "bytes: slice / partclone \\| zstd -3",
        ],
        times,
      ),
    );
    if (values.lab && windows) {
      const pcs = parseCount(values.pcs, "--pcs", 1, 200);
      const lab = await labRows(windows, dir, {
        pcs,
        rate: values["lab-rate"],
        runs,
        ...(values["pc-dir"] ? { pcDir: values["pc-dir"] } : {}),
      });
      console.log();
      console.log(table(LAB_HEAD, lab.table));
      for (const n of lab.notes) console.log(`- ${n}`);
    }
    if (values["no-reimage"] || !windows) return;
    // Re-imaging a PC that holds the Windows-like disk, after an update changed ~3 % of it.
    const re = await reimageRows(windows, dir, { rates: values.rates.split(","), runs });
    console.log();
    console.log(table(REIMAGE_HEAD, re.table));
    for (const n of re.notes) console.log(`- ${n}`);
  } finally {
    if (!values.keep) await Deno.remove(dir, { recursive: true });
    else console.error(`bench:bytes: kept "${dir}"`);
  }
}

if (import.meta.main) await main();
