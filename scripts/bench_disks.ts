// The disks bench:bytes (and its re-image row, bench_reimage.ts) measure, made with the real
// tools from this machine's own /usr files: Windows-like (GPT: FAT32 EFI + MSR + NTFS, a third
// of what was written deleted), Linux + swap (GPT: ext4 likewise + a swap partition full of old
// data), fresh install (MBR: ext4 at ~29 %); and Windows in use: the Windows-like disk with a
// pagefile.sys (8 % of the NTFS) and a hiberfil.sys (4 %) holding stale memory, as a PC that ran
// Windows leaves them; RHEL-like (GPT: XFS filled and a third deleted, through the kernel's
// driver on a loop device, + swap); Fedora-like (GPT: the same on Btrfs) (these three are not
// among the three: bench:bytes --disks picks).
import { join } from "node:path";
import {
  makeDisk,
  makeSwap,
  type PartSpec,
  run,
  withLoopMount,
  withNtfsMount,
} from "../imagetools/fs/testkit.ts";

const MIB = 1024 * 1024;
const MB = 1e6;

/** This machine's own files (binaries, libraries, text), in a stable order: realistic data. */
export async function systemFiles(): Promise<{ path: string; size: number }[]> {
  const out: { path: string; size: number }[] = [];
  const walk = async (dir: string) => {
    const entries = [];
    for await (const e of Deno.readDir(dir)) entries.push(e);
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p).catch(() => {});
      else if (e.isFile) {
        const size = (await Deno.stat(p)).size;
        if (size > 0 && size < 64 * MIB) out.push({ path: p, size });
      }
    }
  };
  for (const d of ["/usr/lib", "/usr/share", "/usr/bin"]) await walk(d).catch(() => {});
  return out;
}

/** Pick files summing to about `bytes`, from `from` on (each file used once per disk). */
export function pick(files: { path: string; size: number }[], from: number, bytes: number) {
  const picked: { path: string; size: number }[] = [];
  let sum = 0;
  for (let i = from; sum < bytes && i < files.length + from; i++) {
    const f = files[i % files.length];
    picked.push(f);
    sum += f.size;
  }
  return picked;
}

export async function fillDir(dir: string, files: { path: string }[]) {
  for (const [i, f] of files.entries()) {
    const to = join(dir, `d${i % 64}`, `${i}-${f.path.split("/").pop()}`);
    await Deno.mkdir(join(to, ".."), { recursive: true });
    await Deno.copyFile(f.path, to);
  }
  return files.map((f, i) => join(`d${i % 64}`, `${i}-${f.path.split("/").pop()}`));
}

export async function sparse(path: string, size: number) {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  await f.truncate(size);
  f.close();
}

export interface Disk {
  label: string;
  path: string;
  parts: (PartSpec & { start: number; pc?: string; swap?: boolean })[];
}

export async function buildNtfs(
  path: string,
  size: number,
  files: { path: string }[],
  tmp: string,
  more?: (root: string) => Promise<void>,
) {
  await sparse(path, size);
  await run("mkntfs", ["-q", "-F", "-f", "-L", "Windows", path]);
  await withNtfsMount(path, tmp, async (dir) => {
    const names = await fillDir(dir, files);
    for (const [i, n] of names.entries()) if (i % 3 === 1) await Deno.remove(join(dir, n));
    await more?.(dir);
  });
}

/** `size` bytes as a paging file holds them: 4 KiB pages in turn of program bytes (this
 * machine's files), random bytes (encrypted or compressed data), zeros and program bytes
 * again. */
export async function staleMemory(
  files: { path: string; size: number }[],
  size: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  const random = new Uint8Array(4096);
  let src = new Uint8Array(0);
  let at = 0;
  let next = 0;
  for (let page = 0; page * 4096 < size; page++) {
    const to = out.subarray(page * 4096, (page + 1) * 4096);
    if (page % 4 === 1) to.set(crypto.getRandomValues(random).subarray(0, to.length));
    else if (page % 4 === 2) continue;
    else {
      while (src.length - at < to.length) {
        src = await Deno.readFile(files[next++ % files.length].path);
        at = 0;
      }
      to.set(src.subarray(at, at + to.length));
      at += to.length;
    }
  }
  return out;
}

async function buildExt4(
  path: string,
  size: number,
  files: { path: string }[],
  tmp: string,
  deleteThird: boolean,
) {
  const src = await Deno.makeTempDir({ dir: tmp, prefix: "src-" });
  const names = await fillDir(src, files);
  await sparse(path, size);
  await run("mkfs.ext4", ["-q", "-F", "-L", "linux", "-d", src, path]);
  await Deno.remove(src, { recursive: true });
  if (deleteThird) {
    const cmds = names.filter((_, i) => i % 3 === 1).map((n) => `rm /${n}`);
    await run("debugfs", ["-w", "-f", "-", path], cmds.join("\n") + "\n");
  }
}

const t0 = performance.now();
export const say = (what: string) =>
  console.error(`bench:bytes: ${((performance.now() - t0) / 1000).toFixed(0)} s: ${what}`);

export const DISK_KINDS = [
  "windows",
  "linux",
  "fresh",
  "windows-in-use",
  "rhel",
  "fedora",
] as const;
export type DiskKind = typeof DISK_KINDS[number];

/** The three kinds of disk (or `kinds`), in `dir`, sizes x `scale`; Windows first. */
export async function buildDisks(
  dir: string,
  scale: number,
  kinds: readonly DiskKind[] = ["windows", "linux", "fresh"],
): Promise<Disk[]> {
  const files = await systemFiles();
  const total = files.reduce((n, f) => n + f.size, 0);
  console.error(
    `bench:bytes: ${files.length} files (${(total / MB).toFixed(0)} MB) of /usr to fill from`,
  );
  const disks: Disk[] = [];
  const s = (mib: number) => Math.round(mib * scale) * MIB;

  // Windows-like: FAT32 EFI (a few files), MSR (zeros), NTFS 45 % filled, a third deleted.
  // Windows in use: the same, with a pagefile.sys and a hiberfil.sys of stale memory.
  for (const kind of ["windows", "windows-in-use"] as const) {
    if (!kinds.includes(kind)) continue;
    const inUse = kind === "windows-in-use";
    const efi = join(dir, `${kind}-efi.img`);
    const msr = join(dir, `${kind}-msr.img`);
    const ntfs = join(dir, `${kind}-ntfs.img`);
    const efiSize = Math.max(s(100), 40 * MIB); // FAT32 needs 65525 clusters at least
    await sparse(efi, efiSize);
    await run("mkfs.vfat", ["-F", "32", "-s", "1", "-n", "EFI", efi]);
    const efiFiles = pick(files, 0, efiSize * 0.2).map((f) => f.path);
    for (let i = 0; i < efiFiles.length; i += 200) {
      await run("mcopy", ["-i", efi, "-D", "o", ...efiFiles.slice(i, i + 200), "::/"]);
    }
    await sparse(msr, s(16));
    const ntfsSize = s(1024) - efiSize - s(16) - 4 * MIB;
    say(`${kind}: EFI done, filling NTFS`);
    await buildNtfs(ntfs, ntfsSize, pick(files, 500, ntfsSize * 0.45), dir, async (root) => {
      if (!inUse) return;
      const memory = pick(files, 9000, ntfsSize * 0.1);
      const page = Math.floor(ntfsSize * 0.08 / 4096) * 4096;
      await Deno.writeFile(join(root, "pagefile.sys"), await staleMemory(memory, page));
      const hiber = Math.floor(ntfsSize * 0.04 / 4096) * 4096;
      await Deno.writeFile(join(root, "hiberfil.sys"), await staleMemory(memory.slice(50), hiber));
    });
    const specs = [
      { image: efi, size: efiSize, type: "ef00", pc: "fat" },
      { image: msr, size: s(16), type: "0c01" },
      { image: ntfs, size: ntfsSize, type: "0700", pc: "ntfs" },
    ];
    const path = join(dir, `${kind}.img`);
    const { starts } = await makeDisk(path, "gpt", specs);
    disks.push({
      label: inUse ? "Windows in use (GPT)" : "Windows-like (GPT)",
      path,
      parts: specs.map((p, i) => ({ ...p, start: starts[i] })),
    });
  }
  // Linux + swap: ext4 45 % filled, a third deleted; swap full of old data.
  if (kinds.includes("linux")) {
    const ext = join(dir, "l-ext4.img");
    const swap = join(dir, "l-swap.img");
    const extSize = s(640);
    await buildExt4(ext, extSize, pick(files, 3000, extSize * 0.45), dir, true);
    await makeSwap(swap, s(128), 9);
    const specs = [
      { image: ext, size: extSize, type: "8300", pc: "extfs" },
      { image: swap, size: s(128), type: "8200", swap: true },
    ];
    say("Linux + swap: ext4 and swap made");
    const path = join(dir, "linux.img");
    const { starts } = await makeDisk(path, "gpt", specs);
    disks.push({
      label: "Linux + swap (GPT)",
      path,
      parts: specs.map((p, i) => ({ ...p, start: starts[i] })),
    });
  }
  // Fresh install: one ext4 at 29 %, nothing deleted.
  if (kinds.includes("fresh")) {
    const ext = join(dir, "f-ext4.img");
    const extSize = s(766);
    await buildExt4(ext, extSize, pick(files, 6000, extSize * 0.29), dir, false);
    const specs = [{ image: ext, size: extSize, type: "83", pc: "extfs" }];
    const path = join(dir, "fresh.img");
    const { starts } = await makeDisk(path, "mbr", specs);
    disks.push({
      label: "fresh install (MBR)",
      path,
      parts: specs.map((p, i) => ({ ...p, start: starts[i] })),
    });
  }
  // RHEL-like: XFS 45 % filled, a third deleted (synced first, so they had blocks); swap.
  // Fedora-like: the same on Btrfs, no swap partition (Fedora swaps to zram).
  for (const kind of ["rhel", "fedora"] as const) {
    if (!kinds.includes(kind)) continue;
    const btrfs = kind === "fedora";
    const xfs = join(dir, `${kind}-root.img`);
    const swap = join(dir, `${kind}-swap.img`);
    const xfsSize = Math.max(s(640), 304 * MIB); // mkfs.xfs makes nothing under 300 MiB
    await sparse(xfs, xfsSize);
    await run(btrfs ? "mkfs.btrfs" : "mkfs.xfs", ["-q", "-f", "-L", kind, xfs]);
    await withLoopMount(xfs, dir, async (root) => {
      const names = await fillDir(root, pick(files, 9000, xfsSize * 0.45));
      await run("sync", ["-f", root]);
      for (const [i, n] of names.entries()) if (i % 3 === 1) await Deno.remove(join(root, n));
    });
    if (!btrfs) await makeSwap(swap, s(128), 11);
    const specs = [
      { image: xfs, size: xfsSize, type: "8300", pc: btrfs ? "btrfs" : "xfs" },
      ...(btrfs ? [] : [{ image: swap, size: s(128), type: "8200", swap: true }]),
    ];
    say(`${kind}: root made`);
    const path = join(dir, `${kind}.img`);
    const { starts } = await makeDisk(path, "gpt", specs);
    disks.push({
      label: btrfs ? "Fedora-like, Btrfs (GPT)" : "RHEL-like, XFS + swap (GPT)",
      path,
      parts: specs.map((p, i) => ({ ...p, start: starts[i] })),
    });
  }
  return disks;
}
