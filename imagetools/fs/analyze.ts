// What a disk holds: its partition table, and for each partition (or the whole disk, when it has
// no table) the file system found there and the map of the blocks it uses. Anything not
// understood (no table, an unknown or encrypted file system, a file system whose map is not
// trusted, partitions that share bytes, space outside every partition, the tables themselves)
// has no map, so every byte of it is kept. Pure over a ReadAt.
import { formatBytes } from "../kit/mod.ts";
import { btrfsUsedMap } from "./btrfs.ts";
import { exfatUsedMap } from "./exfat.ts";
import { extSuper, extUsedMap } from "./ext.ts";
import { fatGeometry, fatUsedMap } from "./fat.ts";
import { ntfsGeometry, ntfsUsedMap } from "./ntfs.ts";
import { transientFiles } from "./ntfs_transient.ts";
import { type Partition, readPartitionTable, TYPE_NAMES } from "./partitions.ts";
import { ascii, NotUnderstood, type ReadAt, u16 } from "./reader.ts";
import { swapUsedMap } from "./swap.ts";
import { xfsUsedMap } from "./xfs.ts";
import { lvmPhysicalVolume, type PhysicalVolume } from "./lvm.ts";
import { freeBytes, freeRuns, markFree, type UsedMap, whollyFree, zeroFree } from "./used_map.ts";

export type FsKind =
  | "ntfs"
  | "ext2"
  | "ext3"
  | "ext4"
  | "fat12"
  | "fat16"
  | "fat32"
  | "exfat"
  | "xfs"
  | "btrfs"
  | "swap"
  | "lvm2";

export interface Volume {
  /** Partition number (0: a file system on the whole disk). */
  number: number;
  start: number;
  size: number;
  /** Partition type (MBR byte or GPT GUID) and its common name; absent on a whole disk. */
  type?: string;
  typeName?: string;
  /** GPT partition name. */
  name?: string;
  /** The file system found, or null for none understood. */
  fs: FsKind | null;
  /** Why the partition is kept whole even though its file system was recognised. */
  note?: string;
  /** Bytes of the partition that are free (become zeros); 0 when kept whole. */
  free: number;
  /** Files whose contents past their first MiB count as free (Windows' pagefile.sys,
   * swapfile.sys, hiberfil.sys: ntfs_transient.ts), as "name size" text. */
  dropped?: string;
}

export interface AnalyzeOptions {
  /** Keep the contents of Windows' paging and hibernation files (default: dropped). */
  keepPagefiles?: boolean;
}

export interface DiskLayout {
  size: number;
  scheme: "mbr" | "gpt" | "none";
  volumes: Volume[];
  /** The used maps of the understood volumes, in disk order. */
  maps: UsedMap[];
}

/** ext2/3/4 by the superblock's features (in `boot`, the first 2 KiB), "ext2" if odd. */
function extKind(boot: Uint8Array): FsKind {
  try {
    return extSuper(boot.subarray(1024, 2048))?.kind ?? "ext2";
  } catch {
    return "ext2"; // a superblock too odd to name; the probe below says why
  }
}

/** "fat12"/"fat16"/"fat32" when `boot` is a FAT boot sector, else null. */
function fatKind(boot: Uint8Array): FsKind | null {
  try {
    const g = fatGeometry(boot.subarray(0, 512));
    return g ? `fat${g.bits}` : null;
  } catch {
    return null; // a geometry too odd to name; the probe below says why
  }
}

/** What a probe found in a partition (or a logical volume). */
interface Found {
  fs: FsKind | null;
  map?: UsedMap;
  note?: string;
  dropped?: string;
  pv?: PhysicalVolume;
}

const LV_TYPE = "LVM logical volume";

async function probe(
  read: ReadAt,
  start: number,
  size: number,
  options: AnalyzeOptions,
): Promise<Found> {
  // The signatures first, so a file system whose map is not understood is still named.
  const boot = await read(start, Math.min(size, 2048));
  let fs: FsKind | null = null;
  if (ascii(boot, 3, 8) === "NTFS    ") fs = "ntfs";
  else if (ascii(boot, 3, 8) === "EXFAT   ") fs = "exfat";
  else if (boot.length >= 2048 && u16(boot, 1024 + 0x38) === 0xef53) fs = extKind(boot);
  else if (ascii(boot, 0, 4) === "XFSB") fs = "xfs";
  else if (boot.length >= 1024 && ascii(boot, 512, 8) === "LABELONE") fs = "lvm2";
  else if (size >= 0x10048 && ascii(await read(start + 0x10040, 8), 0, 8) === "_BHRfS_M") {
    fs = "btrfs";
  } else fs = fatKind(boot);
  try {
    const ntfs = await ntfsUsedMap(read, start, size);
    if (ntfs) {
      if (options.keepPagefiles) return { fs: "ntfs", map: ntfs };
      const files = await transientFiles(read, start, ntfsGeometry(boot)!, ntfs);
      for (const f of files) for (const [lcn, count] of f.dropped) markFree(ntfs, lcn, count);
      const dropped = files.map((f) => `${f.name} ${formatBytes(f.size)}`).join(", ");
      return { fs: "ntfs", map: ntfs, ...(dropped ? { dropped } : {}) };
    }
    const exfat = await exfatUsedMap(read, start, size);
    if (exfat) return { fs: "exfat", map: exfat };
    const fat = await fatUsedMap(read, start, size);
    if (fat) return { fs: `fat${fat.bits}`, map: fat.map };
    const ext = await extUsedMap(read, start, size);
    if (ext) return { fs: ext.kind, map: ext.map };
    const xfs = await xfsUsedMap(read, start, size);
    if (xfs) return { fs: "xfs", map: xfs };
    const btrfs = await btrfsUsedMap(read, start, size);
    if (btrfs) return { fs: "btrfs", map: btrfs };
    const swap = await swapUsedMap(read, start, size);
    if (swap) return { fs: "swap", map: swap };
    const pv = await lvmPhysicalVolume(read, start, size);
    if (pv) {
      const skipped = pv.skipped.length ? `; kept whole: ${pv.skipped.join(", ")}` : "";
      const note = `LVM2 physical volume of "${pv.vg}": its metadata and free extents are kept, ` +
        `its linear logical volumes follow${skipped}`;
      return { fs: "lvm2", note, pv };
    }
    return { fs: null };
  } catch (err) {
    // A recognised file system whose map cannot be trusted: kept whole, and `info` says why.
    if (err instanceof NotUnderstood) return { fs, note: err.message };
    if (err instanceof RangeError) return { fs, note: err.message };
    throw err;
  }
}

/** Find the partitions and file systems of a disk of `size` bytes. */
export async function analyzeDisk(
  read: ReadAt,
  size: number,
  options: AnalyzeOptions = {},
): Promise<DiskLayout> {
  let table;
  try {
    table = await readPartitionTable(read, size);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    // A table we cannot follow: keep the whole disk byte for byte.
    return {
      size,
      scheme: "none",
      volumes: [{ number: 0, start: 0, size, fs: null, note: err.message, free: 0 }],
      maps: [],
    };
  }
  const parts: Partition[] = table.scheme === "none"
    ? [{ number: 0, start: 0, size, type: "" }]
    : [...table.partitions].sort((a, b) => a.start - b.start);
  const volumes: Volume[] = [];
  const mapOf = new Map<Volume, UsedMap>();
  let end = 0;
  for (const p of parts) {
    const pEnd = p.start + p.size;
    // Partitions that share bytes: each one's free blocks may be the other's data, so neither
    // is trusted (the one before is not either: its map would zero the other's bytes).
    const earlier = volumes.filter((v) => p.start < v.start + v.size && v.start < pEnd);
    const found: Found = p.start < end
      ? {
        fs: null,
        note: `overlaps partition ${[...new Set(earlier.map((v) => v.number))].join(", ")}`,
      }
      : await probe(read, p.start, p.size, options);
    for (const v of earlier) {
      mapOf.delete(v);
      v.free = 0;
      delete v.dropped;
      v.note = `${v.note ? `${v.note}; ` : ""}overlaps partition ${p.number}`;
    }
    const add = (v: Volume, found: Found) => {
      if (found.note) v.note = found.note;
      if (found.dropped) v.dropped = found.dropped;
      if (found.map) {
        mapOf.set(v, found.map);
        v.free = freeBytes(found.map);
      }
      volumes.push(v);
    };
    const v: Volume = { number: p.number, start: p.start, size: p.size, fs: found.fs, free: 0 };
    if (p.number !== 0) {
      v.type = p.type;
      if (TYPE_NAMES[p.type]) v.typeName = TYPE_NAMES[p.type];
    }
    if (p.name) v.name = p.name;
    add(v, found);
    end = Math.max(end, pEnd);
    // A PV's logical volumes: each probed as a partition of its own (an LV holding a PV again
    // is not followed).
    for (const lv of found.pv?.volumes ?? []) {
      const probed = await probe(read, lv.start, lv.size, options);
      const inner: Found = probed.pv ? { fs: null } : probed;
      const { start, size, name } = lv;
      add({
        number: p.number,
        start,
        size,
        type: "lvm",
        typeName: LV_TYPE,
        name,
        fs: inner.fs,
        free: 0,
      }, inner);
    }
  }
  // In disk order, as the partitions were sorted.
  const maps = volumes.filter((v) => mapOf.has(v)).map((v) => mapOf.get(v)!);
  volumes.sort((a, b) => a.number - b.number);
  return { size, scheme: table.scheme, volumes, maps };
}

/** Zero the free blocks of `layout` in `buf`, which holds the disk from byte `offset`. */
export function zeroFreeBlocks(layout: DiskLayout, offset: number, buf: Uint8Array): number {
  let n = 0;
  for (const m of layout.maps) n += zeroFree(m, offset, buf);
  return n;
}

/** The runs [a, b) of [from, to) that hold bytes to keep (outside every free block), in order,
 * with gaps of free blocks shorter than `minGap` bytes kept inside a run (one read, not two). */
export function keptRuns(
  layout: DiskLayout,
  from: number,
  to: number,
  minGap = 0,
): [number, number][] {
  const free = layout.maps.flatMap((m) => freeRuns(m, from, to)).sort((x, y) => x[0] - y[0]);
  const runs: [number, number][] = [];
  let at = from;
  for (const [a, b] of free) {
    if (b - a < minGap && a > from && b < to) continue;
    if (a > at) runs.push([at, a]);
    at = Math.max(at, b);
  }
  if (at < to) runs.push([at, to]);
  return runs;
}

/** Whether every byte of [from, to) lies in free blocks of one file system. */
export function isWhollyFree(layout: DiskLayout, from: number, to: number): boolean {
  return layout.maps.some((m) => whollyFree(m, from, to));
}

/** Bytes of the disk that are kept (not free). */
export function keptBytes(layout: DiskLayout): number {
  return layout.size - layout.volumes.reduce((n, v) => n + v.free, 0);
}
