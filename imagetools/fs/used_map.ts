// A used-block map: which units (clusters, blocks, pages) of one file system hold data. Bit i
// (least significant bit first in each byte, as in NTFS's $Bitmap and ext4's block bitmaps) set
// means unit i, at byte `offset + i * unitSize` of the disk, is used. Bytes a map does not cover
// (before `offset`, past the last unit) are kept byte for byte. Pure.

export interface UsedMap {
  /** Disk byte offset of unit 0. */
  offset: number;
  /** Bytes per unit. */
  unitSize: number;
  /** Units the map covers. */
  units: number;
  /** ceil(units / 8) bytes; bit set = used. */
  used: Uint8Array;
}

export function newUsedMap(offset: number, unitSize: number, units: number): UsedMap {
  return { offset, unitSize, units, used: new Uint8Array(Math.ceil(units / 8)) };
}

export function markUsed(map: UsedMap, first: number, count = 1): void {
  const end = Math.min(map.units, first + count);
  for (let i = Math.max(0, first); i < end; i++) {
    if ((i & 7) === 0 && i + 8 <= end) {
      map.used[i >> 3] = 0xff;
      i += 7;
    } else map.used[i >> 3] |= 1 << (i & 7);
  }
}

/** Mark units free again (their bytes become zeros in the image). */
export function markFree(map: UsedMap, first: number, count = 1): void {
  const end = Math.min(map.units, first + count);
  for (let i = Math.max(0, first); i < end; i++) map.used[i >> 3] &= ~(1 << (i & 7));
}

export function isUsed(map: UsedMap, unit: number): boolean {
  return (map.used[unit >> 3] & (1 << (unit & 7))) !== 0;
}

const POPCOUNT = new Uint8Array(256).map((_, i) => {
  let n = 0;
  for (let v = i; v; v >>= 1) n += v & 1;
  return n;
});

/** Units marked used (bits past `units` in the last byte are not counted). */
export function usedUnits(map: UsedMap): number {
  let n = 0;
  const whole = map.units >> 3;
  for (let i = 0; i < whole; i++) n += POPCOUNT[map.used[i]];
  for (let u = whole * 8; u < map.units; u++) if (isUsed(map, u)) n++;
  return n;
}

/** Bytes of free units. */
export function freeBytes(map: UsedMap): number {
  return (map.units - usedUnits(map)) * map.unitSize;
}

/** The runs [a, b) of disk bytes within [from, to) that lie in free units of `map`, in order
 * (a unit only partly inside is cut to its part). */
export function freeRuns(map: UsedMap, from: number, to: number): [number, number][] {
  const start = Math.max(from, map.offset);
  const end = Math.min(to, map.offset + map.units * map.unitSize);
  const runs: [number, number][] = [];
  if (start >= end) return runs;
  const first = Math.floor((start - map.offset) / map.unitSize);
  const last = Math.ceil((end - map.offset) / map.unitSize);
  let u = first;
  while (u < last) {
    if ((u & 7) === 0 && map.used[u >> 3] === 0xff) {
      u += 8;
      continue;
    }
    if (isUsed(map, u)) {
      u++;
      continue;
    }
    let v = u + 1;
    while (v < last && !isUsed(map, v)) v++;
    runs.push([
      Math.max(start, map.offset + u * map.unitSize),
      Math.min(end, map.offset + v * map.unitSize),
    ]);
    u = v;
  }
  return runs;
}

/**
 * Zero, in `buf` (which holds the disk's bytes from `bufOffset`), every byte of a free unit of
 * `map`; returns the bytes zeroed. A unit only partly inside `buf` is zeroed in its part.
 */
export function zeroFree(map: UsedMap, bufOffset: number, buf: Uint8Array): number {
  let zeroed = 0;
  for (const [a, b] of freeRuns(map, bufOffset, bufOffset + buf.length)) {
    buf.fill(0, a - bufOffset, b - bufOffset);
    zeroed += b - a;
  }
  return zeroed;
}

/** Whether every byte of [from, to) lies in free units of `map`. */
export function whollyFree(map: UsedMap, from: number, to: number): boolean {
  if (from < map.offset || to > map.offset + map.units * map.unitSize) return false;
  const first = Math.floor((from - map.offset) / map.unitSize);
  const last = Math.ceil((to - map.offset) / map.unitSize);
  for (let u = first; u < last; u++) if (isUsed(map, u)) return false;
  return true;
}
