// FAT12/16/32: a data cluster is used when its FAT entry is not 0 (bad clusters count as used,
// so they are kept). Everything before the data region (boot sector, FSInfo, the backup boot
// sector, every copy of the FAT, FAT12/16's root directory) and the tail past the last cluster
// is kept byte for byte. A cluster any copy of the FAT names is used (dosfsck and partclone.fat
// read only the first; FAT32 with mirroring off lives in its active copy).
// A volume marked dirty (the boot sector's state bit, set by Linux while mounted, or FAT[1]'s
// clean-shutdown bit cleared, by Windows while mounted) or with a disk error recorded in FAT[1]
// is kept whole: its FAT may not name every cluster a file holds, as fsck.fat warns.
import { ascii, NotUnderstood, type ReadAt, u16, u32 } from "./reader.ts";
import { markUsed, newUsedMap, type UsedMap } from "./used_map.ts";

export interface FatGeometry {
  bits: 12 | 16 | 32;
  bytesPerSector: number;
  clusterSize: number;
  /** Byte offsets inside the volume. */
  fatOffset: number;
  fatBytes: number;
  /** Copies of the FAT, back to back from fatOffset. */
  fats: number;
  dataOffset: number;
  clusters: number;
}

const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

/** The boot sector's geometry, or null if this is no FAT boot sector. */
export function fatGeometry(boot: Uint8Array): FatGeometry | null {
  if (boot[510] !== 0x55 || boot[511] !== 0xaa) return null;
  if (boot[0] !== 0xeb && boot[0] !== 0xe9) return null;
  if (ascii(boot, 3, 8) === "NTFS    " || ascii(boot, 3, 8) === "EXFAT   ") return null;
  const bytesPerSector = u16(boot, 0x0b);
  const spc = boot[0x0d];
  const reserved = u16(boot, 0x0e);
  const fats = boot[0x10];
  const rootEntries = u16(boot, 0x11);
  const total = u16(boot, 0x13) || u32(boot, 0x20);
  const fatSectors = u16(boot, 0x16) || u32(boot, 0x24);
  if (
    !pow2(bytesPerSector) || bytesPerSector < 512 || bytesPerSector > 4096 || !pow2(spc) ||
    reserved === 0 || fats === 0 || fats > 4 || total === 0 || fatSectors === 0
  ) return null;
  const rootSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
  const dataSector = reserved + fats * fatSectors + rootSectors;
  if (dataSector >= total) return null;
  const clusters = Math.floor((total - dataSector) / spc);
  const bits = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
  const fatBytes = fatSectors * bytesPerSector;
  if (Math.floor((fatBytes * 8) / bits) < clusters + 2) {
    throw new NotUnderstood(`FAT${bits} table is too small for its ${clusters} clusters`);
  }
  return {
    bits,
    bytesPerSector,
    clusterSize: spc * bytesPerSector,
    fatOffset: reserved * bytesPerSector,
    fatBytes,
    fats,
    dataOffset: dataSector * bytesPerSector,
    clusters,
  };
}

/** The FAT entry of cluster `n`. */
export function fatEntry(fat: Uint8Array, bits: 12 | 16 | 32, n: number): number {
  if (bits === 32) return u32(fat, n * 4) & 0x0fffffff;
  if (bits === 16) return u16(fat, n * 2);
  const v = u16(fat, Math.floor((n * 3) / 2));
  return n & 1 ? v >> 4 : v & 0xfff;
}

/** Why the volume's FAT may be stale ("was not cleanly unmounted ...", "recorded ..."), or
 * null when it was cleanly unmounted. The bits fsck.fat reads: the boot sector's state byte
 * (0x25, or 0x41 on FAT32, present with an extended boot signature) and FAT[1]'s top bits
 * (FAT16 0x8000 clean, 0x4000 no error; FAT32 0x08000000, 0x04000000; FAT12 has none). */
export function fatDirty(boot: Uint8Array, fat: Uint8Array, bits: 12 | 16 | 32): string | null {
  const ext = bits === 32 ? 0x40 : 0x24;
  const hasState = boot[ext + 2] === 0x29 || boot[ext + 2] === 0x28;
  const fix = "run fsck.vfat or chkdsk on the golden disk";
  if (hasState && boot[ext + 1] & 0x01) {
    return `was not cleanly unmounted (its boot sector's dirty bit is set; ${fix})`;
  }
  if (bits === 12) return null;
  const entry = fatEntry(fat, bits, 1);
  const [clean, noError] = bits === 32 ? [0x08000000, 0x04000000] : [0x8000, 0x4000];
  if (!(entry & clean)) return `was not cleanly unmounted (FAT[1]'s clean bit is clear; ${fix})`;
  if (!(entry & noError)) return `recorded a disk I/O error (FAT[1]'s error bit; ${fix})`;
  return null;
}

/** The used-cluster map of the FAT volume at `start`, or null if it is no FAT. */
export async function fatUsedMap(
  read: ReadAt,
  start: number,
  size: number,
): Promise<{ map: UsedMap; bits: 12 | 16 | 32 } | null> {
  const boot = await read(start, 512);
  const g = fatGeometry(boot);
  if (!g) return null;
  const end = g.dataOffset + g.clusters * g.clusterSize;
  if (end > size) {
    throw new NotUnderstood(
      `FAT${g.bits} volume (${end} bytes) is larger than its partition (${size})`,
    );
  }
  // FAT32 keeps its root in a cluster chain and its FAT size in the 32-bit field; FAT12/16 in
  // the fixed root area. A boot sector saying both would place the data wrongly.
  if (g.bits === 32 && (u16(boot, 0x11) !== 0 || u16(boot, 0x16) !== 0)) {
    throw new NotUnderstood(
      `FAT32 boot sector names a fixed root directory (${
        u16(boot, 0x11)
      } entries) or a 16-bit FAT size (${u16(boot, 0x16)} sectors), which FAT32 has not`,
    );
  }
  if (g.bits !== 32 && u16(boot, 0x11) === 0) {
    throw new NotUnderstood(`FAT${g.bits} boot sector names no fixed root directory (0 entries)`);
  }
  const fat = await read(start + g.fatOffset, g.fatBytes);
  const dirty = fatDirty(boot, fat, g.bits);
  if (dirty) throw new NotUnderstood(`FAT${g.bits} volume ${dirty}`);
  const map = newUsedMap(start + g.dataOffset, g.clusterSize, g.clusters);
  // A cluster is used when any copy of the FAT says so: copies that differ (FAT32 with
  // mirroring off uses its active copy, a crash can leave one stale) then lose nothing.
  // Each copy starts with the media byte and all other bits set (FAT[0]): a copy that does
  // not is not where the boot sector's FAT size says, and neither is the data after it.
  const media = (g.bits === 12 ? 0xf00 : g.bits === 16 ? 0xff00 : 0x0fffff00) | boot[0x15];
  for (let k = 0; k < g.fats; k++) {
    const copy = k === 0 ? fat : await read(start + g.fatOffset + k * g.fatBytes, g.fatBytes);
    const first = fatEntry(copy, g.bits, 0);
    if (first !== media) {
      throw new NotUnderstood(
        `FAT${g.bits} copy ${k + 1} does not start with the media byte (FAT[0] is 0x${
          first.toString(16)
        }, not 0x${media.toString(16)}): the boot sector's FAT size may be wrong`,
      );
    }
    for (let c = 0; c < g.clusters; c++) {
      if (fatEntry(copy, g.bits, c + 2) !== 0) markUsed(map, c);
    }
  }
  return { map, bits: g.bits };
}
