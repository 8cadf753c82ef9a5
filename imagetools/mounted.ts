// Is a block device, or anything built on it, mounted? A file system in use changes while it is
// read (slicing would pair one moment's free-block map with later data) and must never be
// written under (assembling onto it would corrupt it in the kernel's hands). What counts: the
// device itself, its partitions, and what holds them (LVM, md, dm-crypt: sysfs "holders"),
// found in /proc/self/mountinfo by device number or by the mount's source path (Btrfs shows an
// anonymous device number there), and active swap (/proc/swaps). An image file counts through
// the loop devices it backs (sysfs loop/backing_file). Linux only; elsewhere, or where /sys or
// /proc cannot be read, nothing is found.
import { basename, join } from "node:path";

export interface MountUse {
  /** The device in use (/dev/<name>). */
  device: string;
  /** Where it is mounted, or "swap". */
  where: string;
  readOnly: boolean;
}

/** Linux's dev_t as "major:minor" (glibc's gnu_dev_major / gnu_dev_minor). */
export function devNumber(rdev: number): string {
  const d = BigInt(rdev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n);
  const minor = (d & 0xffn) | ((d >> 12n) & 0xffffff00n);
  return `${major}:${minor}`;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

async function names(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
  } catch {
    return [];
  }
}

/** The device numbers of `dev` ("major:minor") and of everything built on it, with names. */
async function family(dev: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const queue = [dev];
  while (queue.length) {
    const d = queue.shift()!;
    if (found.has(d)) continue;
    let sys: string;
    try {
      sys = await Deno.realPath(`/sys/dev/block/${d}`);
    } catch {
      continue;
    }
    found.set(d, basename(sys));
    const next: string[] = [];
    for (const name of await names(sys)) {
      if (await readText(join(sys, name, "partition")) !== null) next.push(join(sys, name));
    }
    for (const name of await names(join(sys, "holders"))) next.push(`/sys/class/block/${name}`);
    for (const p of next) {
      const n = (await readText(join(p, "dev")))?.trim();
      if (n) queue.push(n);
    }
  }
  return found;
}

/** Unescape mountinfo's octal escapes (\040 for a space). */
const unescape = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));

async function rdevOf(path: string): Promise<string | null> {
  try {
    const st = await Deno.stat(path);
    return st.isBlockDevice && st.rdev !== null ? devNumber(st.rdev) : null;
  } catch {
    return null;
  }
}

/** The loop devices (/dev/loopN) whose backing file is `file`. */
async function loopsOf(file: string): Promise<string[]> {
  let real: string;
  try {
    real = await Deno.realPath(file);
  } catch {
    return [];
  }
  const loops: string[] = [];
  for (const name of await names("/sys/block")) {
    const backing = (await readText(`/sys/block/${name}/loop/backing_file`))?.trim();
    if (backing === real) loops.push(`/dev/${name}`);
  }
  return loops;
}

/** Every mount and active swap on block device `path` or on what is built on it; for an image
 * file, on the loop devices it backs. */
export async function mountsOn(path: string): Promise<MountUse[]> {
  const dev = await rdevOf(path);
  if (dev === null) {
    const uses: MountUse[] = [];
    for (const loop of await loopsOf(path)) uses.push(...await mountsOn(loop));
    return uses;
  }
  const devs = await family(dev);
  if (!devs.has(dev)) devs.set(dev, basename(path));
  const uses: MountUse[] = [];
  for (const line of (await readText("/proc/self/mountinfo") ?? "").split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-");
    if (dash < 6 || f.length < dash + 4) continue;
    const source = unescape(f[dash + 2]);
    const number = devs.has(f[2]) ? f[2] : source.startsWith("/dev/") ? await rdevOf(source) : null;
    if (number === null || !devs.has(number)) continue;
    const options = [...f[5].split(","), ...f[dash + 3].split(",")];
    uses.push({
      device: `/dev/${devs.get(number)}`,
      where: unescape(f[4]),
      readOnly: options.includes("ro"),
    });
  }
  for (const line of (await readText("/proc/swaps") ?? "").split("\n").slice(1)) {
    const name = line.split(/\s+/)[0];
    if (!name) continue;
    const number = await rdevOf(unescape(name));
    if (number !== null && devs.has(number)) {
      uses.push({ device: `/dev/${devs.get(number)}`, where: "swap", readOnly: false });
    }
  }
  return uses;
}

/** Throw, naming the first one, when `path` or what is built on it is mounted read-write, or
 * (with `anyMount`: before writing) mounted at all or in use as swap. `doing`: "slice",
 * "assemble to". */
export async function refuseMounted(path: string, doing: string, anyMount = false) {
  // Slicing keeps only a swap area's header, which swapping does not change.
  const uses = (await mountsOn(path)).filter((u) =>
    anyMount || (!u.readOnly && u.where !== "swap")
  );
  if (uses.length === 0) return;
  const u = uses[0];
  const what = u.where === "swap"
    ? `${u.device} is in use as swap`
    : `${u.device} is mounted ${u.readOnly ? "read-only" : "read-write"} on ${u.where}`;
  const more = uses.length > 1 ? ` (and ${uses.length - 1} more)` : "";
  const why = anyMount
    ? "writing under a mounted file system corrupts it; unmount it first"
    : "a file system in use changes while it is read, and its free-block map with it; unmount it or remount it read-only first";
  throw new Error(`Cannot ${doing} "${path}": ${what}${more} (${why})`);
}
