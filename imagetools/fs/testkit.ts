// Disks made by the real tools, for the file-system tests and bench:bytes: file systems built by
// mkntfs, mkfs.ext4, mkfs.vfat and mkswap in files of their own, filled (files written, deleted,
// and written again into the holes, so some are fragmented), then put into a partitioned disk
// (sgdisk for GPT, sfdisk for MBR). No loop device, except for XFS (the kernel's driver):
// ntfs-3g mounts an image file through FUSE, debugfs and mtools write ext4 and FAT images
// directly.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { attachLoop, detachLoop } from "../testkit.ts";

/** Run a tool; throws naming it, with its stderr, if it fails. */
export async function run(cmd: string, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Output is read while the input is written: a tool that answers as it reads (debugfs) would
  // otherwise fill its pipe and wait for us while we wait for it (bench:bytes --scale 1 hung).
  const output = child.output();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await output;
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `Cannot run ${cmd} ${args.join(" ")}: exit ${out.code}: ${
        new TextDecoder().decode(out.stderr).trim() || text.trim()
      }`,
    );
  }
  return text;
}

/** Where each file's content comes from: seeded bytes, random or text-like (compressible). */
export function fileBytes(
  seed: number,
  size: number,
  kind: "random" | "text" = "random",
): Uint8Array {
  const out = new Uint8Array(size);
  let a = seed >>> 0 || 1;
  const next = () => {
    a ^= a << 13;
    a >>>= 0;
    a ^= a >>> 17;
    a ^= a << 5;
    return (a >>>= 0);
  };
  if (kind === "random") {
    for (let i = 0; i < size; i++) out[i] = next() & 0xff;
    return out;
  }
  const words = ["lab", "image", "chunk", "disk", "cascade", "the", "of", "file", "block", "0x1f"];
  let i = 0;
  while (i < size) {
    const w = words[next() % words.length] + (next() % 7 === 0 ? "\n" : " ");
    for (let j = 0; j < w.length && i < size; j++) out[i++] = w.charCodeAt(j);
  }
  return out;
}

export interface FileSpec {
  path: string;
  bytes: Uint8Array;
}

/** What to do to a new file system: write files, delete some, write more (into the holes). */
export interface FillPlan {
  first: FileSpec[];
  remove: string[];
  then: FileSpec[];
}

/** A plan of `n` files of about `each` bytes, every third one deleted, then `n / 2` more. */
export function fillPlan(seed: number, n: number, each: number): FillPlan {
  const spec = (i: number, dir: string): FileSpec => ({
    path: `${dir}/f${i}.bin`,
    bytes: fileBytes(seed * 1000 + i, each + ((i * 7919) % each), i % 2 ? "text" : "random"),
  });
  const first = Array.from({ length: n }, (_, i) => spec(i, "a"));
  const then = Array.from({ length: Math.ceil(n / 2) }, (_, i) => spec(n + i, "b"));
  return { first, remove: first.filter((_, i) => i % 3 === 1).map((f) => f.path), then };
}

async function stage(dir: string, files: FileSpec[]) {
  for (const f of files) {
    const p = join(dir, f.path);
    await Deno.mkdir(join(p, ".."), { recursive: true });
    await Deno.writeFile(p, f.bytes);
  }
}

async function sparseFile(path: string, size: number) {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  await f.truncate(size);
  f.close();
}

/** An ext4 file system filled by `plan` (debugfs writes and deletes in the image). */
export async function makeExt4(
  path: string,
  size: number,
  plan: FillPlan,
  tmp: string,
  mkfsArgs: string[] = [],
) {
  await sparseFile(path, size);
  await run("mkfs.ext4", ["-q", "-F", "-L", "golden", ...mkfsArgs, path]);
  const src = await Deno.makeTempDir({ dir: tmp, prefix: "ext-src-" });
  await stage(src, [...plan.first, ...plan.then]);
  const cmds = ["mkdir a", "mkdir b"];
  for (const f of plan.first) cmds.push(`write ${join(src, f.path)} ${f.path}`);
  for (const p of plan.remove) cmds.push(`rm ${p}`);
  for (const f of plan.then) cmds.push(`write ${join(src, f.path)} ${f.path}`);
  await run("debugfs", ["-w", "-f", "-", path], cmds.join("\n") + "\n");
  await Deno.remove(src, { recursive: true });
}

/** A FAT file system (12, 16 or 32 bits) filled by `plan` (mtools). */
export async function makeFat(
  path: string,
  size: number,
  bits: 12 | 16 | 32,
  plan: FillPlan,
  tmp: string,
  mkfsArgs: string[] = bits === 32 ? ["-s", "1"] : [],
) {
  await sparseFile(path, size);
  await run("mkfs.vfat", [
    "-F",
    String(bits),
    ...mkfsArgs,
    "-n",
    "EFI",
    path,
  ]);
  const src = await Deno.makeTempDir({ dir: tmp, prefix: "fat-src-" });
  await stage(src, [...plan.first, ...plan.then]);
  await run("mmd", ["-i", path, "::/a", "::/b"]);
  for (const f of plan.first) await run("mcopy", ["-i", path, join(src, f.path), `::/${f.path}`]);
  for (const p of plan.remove) await run("mdel", ["-i", path, `::/${p}`]);
  for (const f of plan.then) await run("mcopy", ["-i", path, join(src, f.path), `::/${f.path}`]);
  await Deno.remove(src, { recursive: true });
}

/** Mount an NTFS image file with ntfs-3g (FUSE, no loop device), run `fn`, unmount. */
export async function withNtfsMount<T>(
  image: string,
  tmp: string,
  fn: (dir: string) => Promise<T>,
  readOnly = false,
): Promise<T> {
  const dir = await Deno.makeTempDir({ dir: tmp, prefix: "ntfs-mnt-" });
  await run("ntfs-3g", [...(readOnly ? ["-o", "ro"] : []), image, dir]);
  try {
    return await fn(dir);
  } finally {
    await run("fusermount", ["-u", dir]).catch(() => run("umount", [dir]));
    await Deno.remove(dir);
  }
}

/** An NTFS file system filled by `plan` through ntfs-3g. */
export async function makeNtfs(
  path: string,
  size: number,
  plan: FillPlan,
  tmp: string,
  mkfsArgs: string[] = [],
) {
  await sparseFile(path, size);
  await run("mkntfs", ["-q", "-F", "-f", "-L", "golden", ...mkfsArgs, path]);
  await withNtfsMount(path, tmp, async (dir) => {
    await stage(dir, plan.first);
    for (const p of plan.remove) await Deno.remove(join(dir, p));
    await stage(dir, plan.then);
  });
}

/** Mount a file-system image through a loop device, run `fn`, unmount. The kernel's own driver
 * (XFS), or a FUSE one that wants a block device (`fuse`: "mount.exfat-fuse"). Root only. */
export async function withLoopMount<T>(
  image: string,
  tmp: string,
  fn: (dir: string) => Promise<T>,
  readOnly = false,
  fuse?: string,
): Promise<T> {
  const dir = await Deno.makeTempDir({ dir: tmp, prefix: "loop-mnt-" });
  const device = await attachLoop(image);
  try {
    await run(fuse ?? "mount", [...(readOnly ? ["-o", "ro"] : []), device, dir]);
    try {
      return await fn(dir);
    } finally {
      await run(fuse ? "fusermount" : "umount", [...(fuse ? ["-u"] : []), dir]);
    }
  } finally {
    await detachLoop(device);
    await Deno.remove(dir);
  }
}

/** An exFAT filled by `plan` through exfat-fuse (on a loop device: it wants a block device). */
export async function makeExfat(path: string, size: number, plan: FillPlan, tmp: string) {
  await sparseFile(path, size);
  await run("mkfs.exfat", ["-L", "golden", path]);
  await withLoopMount(
    path,
    tmp,
    async (dir) => {
      await stage(dir, plan.first);
      for (const p of plan.remove) await Deno.remove(join(dir, p));
      await stage(dir, plan.then);
    },
    false,
    "mount.exfat-fuse",
  );
}

/** Fill a mounted file system by `plan`, each step written out before the next: with delayed
 * allocation (XFS, Btrfs) files deleted before they reach the disk never get blocks, and leave
 * no holes for the later files to fill. */
async function fillMounted(dir: string, plan: FillPlan) {
  await stage(dir, plan.first);
  await run("sync", ["-f", dir]);
  for (const p of plan.remove) await Deno.remove(join(dir, p));
  await run("sync", ["-f", dir]);
  await stage(dir, plan.then);
}

/** A file system made by `mkfs` (its -q -f -L golden and `mkfsArgs`) and filled by `plan`
 * through the kernel's driver on a loop device. */
async function makeMounted(
  mkfs: string,
  path: string,
  size: number,
  plan: FillPlan,
  tmp: string,
  mkfsArgs: string[],
) {
  await sparseFile(path, size);
  await run(mkfs, ["-q", "-f", "-L", "golden", ...mkfsArgs, path]);
  await withLoopMount(path, tmp, (dir) => fillMounted(dir, plan));
}

/** A Btrfs filled by `plan` through the kernel's driver (mkfs.btrfs wants ~110 MiB at least). */
export function makeBtrfs(
  path: string,
  size: number,
  plan: FillPlan,
  tmp: string,
  mkfsArgs: string[] = [],
) {
  return makeMounted("mkfs.btrfs", path, size, plan, tmp, mkfsArgs);
}

/** An XFS filled by `plan` through the kernel (mkfs.xfs wants 300 MiB at least). */
export function makeXfs(
  path: string,
  size: number,
  plan: FillPlan,
  tmp: string,
  mkfsArgs: string[] = [],
) {
  return makeMounted("mkfs.xfs", path, size, plan, tmp, mkfsArgs);
}

/** A swap area whose pages hold stale data (as after use), with a fresh swap header. */
export async function makeSwap(path: string, size: number, seed: number) {
  await Deno.writeFile(path, fileBytes(seed, size, "text"));
  await Deno.chmod(path, 0o600);
  await run("mkswap", ["-L", "swap", path]);
}

export interface PartSpec {
  /** Its content (a file as big as the partition), or null for stale random bytes. */
  image: string | null;
  size: number;
  /** sgdisk type code (e.g. "ef00", "0c01", "0700", "8300", "8200") or an MBR type ("83"). */
  type: string;
}

const MIB = 1024 * 1024;

/** Write a partitioned disk: partitions 1 MiB apart from 1 MiB on, their images copied in.
 * MBR: the partitions after the first go as logical partitions into one extended partition.
 * GPT with `sectorSize` 4096: a 4Kn disk's table, written by sgdisk through a loop device of
 * 4096-byte sectors (root only). */
export async function makeDisk(
  path: string,
  scheme: "gpt" | "mbr",
  parts: PartSpec[],
  sectorSize = 512,
) {
  const starts: number[] = [];
  let at = MIB;
  for (const p of parts) {
    if (scheme === "mbr" && starts.length > 0) at += MIB; // room for the EBR before each logical
    starts.push(at);
    at += p.size;
  }
  const size = at + MIB; // the GPT backup lives in the last sectors
  await sparseFile(path, size);
  if (scheme === "gpt") {
    const args = ["-o"];
    parts.forEach((p, i) => {
      const first = starts[i] / sectorSize;
      const last = (starts[i] + p.size) / sectorSize - 1;
      args.push("-n", `${i + 1}:${first}:${last}`, "-t", `${i + 1}:${p.type}`);
    });
    if (sectorSize === 512) await run("sgdisk", [...args, path]);
    else {
      const dev = await attachLoop(path, sectorSize);
      try {
        await run("sgdisk", [...args, dev]);
      } finally {
        await detachLoop(dev);
      }
    }
  } else {
    const lines = ["label: dos", "unit: sectors"];
    lines.push(`start=${starts[0] / 512}, size=${parts[0].size / 512}, type=${parts[0].type}`);
    if (parts.length > 1) {
      const extStart = starts[1] - MIB;
      lines.push(`start=${extStart / 512}, size=${(at - extStart) / 512}, type=5`);
      parts.slice(1).forEach((p, i) =>
        lines.push(`start=${starts[i + 1] / 512}, size=${p.size / 512}, type=${p.type}`)
      );
    }
    await run("sfdisk", ["-q", path], lines.join("\n") + "\n");
  }
  const disk = await Deno.open(path, { write: true });
  try {
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      const bytes = p.image ? await Deno.readFile(p.image) : fileBytes(i + 77, p.size);
      if (bytes.length !== p.size) {
        throw new RangeError(`Partition ${i + 1} image is not ${p.size} bytes`);
      }
      await disk.seek(starts[i], Deno.SeekMode.Start);
      let done = 0;
      while (done < bytes.length) done += await disk.write(bytes.subarray(done));
    }
  } finally {
    disk.close();
  }
  return { size, starts };
}

/** Copy [start, start + size) of a disk into a file of its own (for fsck and file listing). */
export async function extract(disk: string, start: number, size: number, out: string) {
  const f = await Deno.open(disk);
  try {
    await f.seek(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(size);
    let got = 0;
    while (got < size) {
      const n = await f.read(buf.subarray(got));
      if (!n) throw new RangeError(`"${disk}" ended before byte ${start + size}`);
      got += n;
    }
    await Deno.writeFile(out, buf);
  } finally {
    f.close();
  }
}

function md5(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

async function walk(dir: string, prefix = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) Object.assign(out, await walk(join(dir, e.name), rel));
    else if (e.isFile) out[rel] = md5(await Deno.readFile(join(dir, e.name)));
  }
  return out;
}

/** Every file's MD5, by path, as the file system's own tools read it back out of `image`. */
export async function fileSums(
  fs: "ntfs" | "ext4" | "fat" | "xfs" | "exfat" | "btrfs",
  image: string,
  tmp: string,
): Promise<Record<string, string>> {
  if (fs === "ntfs") return await withNtfsMount(image, tmp, (dir) => walk(dir), true);
  if (fs === "exfat") {
    return await withLoopMount(image, tmp, (dir) => walk(dir), true, "mount.exfat-fuse");
  }
  if (fs === "xfs" || fs === "btrfs") {
    return await withLoopMount(image, tmp, (dir) => walk(dir), true);
  }
  const dir = await Deno.makeTempDir({ dir: tmp, prefix: "files-" });
  try {
    if (fs === "ext4") {
      await run("debugfs", ["-R", `rdump / ${dir}`, image]);
      await Deno.remove(join(dir, "lost+found"), { recursive: true }).catch(() => {});
    } else await run("mcopy", ["-s", "-n", "-i", image, "::/*", dir]);
    return await walk(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The file system's own check, read-only: throws with its output if it finds anything. */
export async function fsck(
  fs: "ntfs" | "ext4" | "fat" | "xfs" | "exfat" | "btrfs",
  image: string,
): Promise<string> {
  if (fs === "exfat") return await run("fsck.exfat", ["-n", image]);
  if (fs === "btrfs") return await run("btrfs", ["check", "--readonly", image]);
  if (fs === "ntfs") return await run("ntfsfix", ["-n", image]);
  if (fs === "xfs") return await run("xfs_repair", ["-n", "-f", image]);
  if (fs === "ext4") return await run("e2fsck", ["-fn", image]);
  return await run("fsck.vfat", ["-n", image]);
}
