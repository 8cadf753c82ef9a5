// exFAT (shared data partitions, disks formatted by Windows or a camera): the used clusters are
// the set bits of the allocation bitmap, a file named by an entry (type 0x81) of the root
// directory, as partclone.exfat reads it. Everything before the cluster heap (the boot regions
// and their backups, the FAT) is kept byte for byte. Not understood, so kept whole: a volume
// marked dirty (mounted and not cleanly unmounted), one with a media failure recorded, and
// TexFAT (two FATs and two bitmaps). Pure over a ReadAt.
import { ascii, NotUnderstood, type ReadAt, u32, u64 } from "./reader.ts";
import { newUsedMap, type UsedMap } from "./used_map.ts";

const ACTIVE_FAT = 0x1;
const VOLUME_DIRTY = 0x2;
const MEDIA_FAILURE = 0x4;
const BITMAP_ENTRY = 0x81;
const END_OF_CHAIN = 0xffffffff;

/** The used-cluster map of the exFAT volume at `start`, or null if it is no exFAT. */
export async function exfatUsedMap(
  read: ReadAt,
  start: number,
  size: number,
): Promise<UsedMap | null> {
  if (size < 4096) return null;
  const boot = await read(start, 512);
  if (ascii(boot, 3, 8) !== "EXFAT   " || boot[510] !== 0x55 || boot[511] !== 0xaa) return null;
  const sectorShift = boot[108];
  const clusterShift = boot[109];
  if (sectorShift < 9 || sectorShift > 12 || sectorShift + clusterShift > 25) {
    throw new NotUnderstood("exFAT boot sector has an impossible geometry");
  }
  const sector = 2 ** sectorShift;
  const clusterSize = sector * 2 ** clusterShift;
  const volumeBytes = u64(boot, 72) * sector;
  const fatAt = u32(boot, 80) * sector;
  const fatBytes = u32(boot, 84) * sector;
  const heapAt = u32(boot, 88) * sector;
  const clusters = u32(boot, 92);
  const rootCluster = u32(boot, 96);
  const flags = boot[106] | (boot[107] << 8);
  if (volumeBytes > size || heapAt + clusters * clusterSize > volumeBytes) {
    throw new NotUnderstood(`exFAT volume (${volumeBytes} bytes) is larger than its partition`);
  }
  if (fatBytes < (clusters + 2) * 4) throw new NotUnderstood("exFAT FAT is too small");
  if (boot[110] !== 1 || flags & ACTIVE_FAT) throw new NotUnderstood("TexFAT (two FATs)");
  if (flags & VOLUME_DIRTY) {
    throw new NotUnderstood("exFAT volume is marked dirty (not cleanly unmounted; run fsck.exfat)");
  }
  if (flags & MEDIA_FAILURE) throw new NotUnderstood("exFAT volume recorded a media failure");

  const fat = await read(start + fatAt, (clusters + 2) * 4);
  const clusterAt = (c: number) => {
    if (c < 2 || c >= clusters + 2) throw new NotUnderstood(`exFAT names cluster ${c}`);
    return start + heapAt + (c - 2) * clusterSize;
  };
  /** A chain of clusters from `first` through the FAT; `length` bytes when it is contiguous
   * and not chained (an entry of 0: exFAT's NoFatChain). */
  const chain = (first: number, length?: number): number[] => {
    const out = [first];
    for (let c = first; out.length <= clusters;) {
      const next = u32(fat, c * 4);
      if (next === END_OF_CHAIN) return out;
      if (next === 0 && length !== undefined && out.length === 1) {
        const n = Math.ceil(length / clusterSize);
        return Array.from({ length: n }, (_, i) => first + i);
      }
      clusterAt(next);
      out.push(c = next);
    }
    throw new NotUnderstood(`exFAT cluster chain from ${first} loops`);
  };

  // The root directory's entries, until the end-of-directory entry (type 0).
  let bitmap: { first: number; length: number } | undefined;
  outer: for (const c of chain(rootCluster)) {
    const dir = await read(clusterAt(c), clusterSize);
    for (let at = 0; at + 32 <= dir.length; at += 32) {
      const type = dir[at];
      if (type === 0) break outer;
      if (type === BITMAP_ENTRY && (dir[at + 1] & 1) === 0) {
        bitmap = { first: u32(dir, at + 20), length: u64(dir, at + 24) };
        break outer;
      }
    }
  }
  const need = Math.ceil(clusters / 8);
  if (!bitmap || bitmap.length < need) {
    throw new NotUnderstood("exFAT root directory names no allocation bitmap of the volume");
  }
  const map = newUsedMap(start + heapAt, clusterSize, clusters);
  let got = 0;
  for (const c of chain(bitmap.first, bitmap.length)) {
    if (got >= need) break;
    const n = Math.min(clusterSize, need - got);
    map.used.set(await read(clusterAt(c), n), got);
    got += n;
  }
  if (got < need) throw new NotUnderstood("exFAT allocation bitmap ends before the volume");
  return map;
}
