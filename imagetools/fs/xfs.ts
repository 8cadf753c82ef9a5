// XFS (RHEL, Rocky and Alma install on it): the free blocks are the records of each allocation
// group's by-block free-space B+tree (bnobt, rooted in the AG's AGF), as partclone.xfs reads
// them; every other block is used (the AG headers, the free list, the log, every tree). XFS
// keeps no "clean" flag: only its journal says whether it was cleanly unmounted, so the
// internal log's last record must be an unmount record (xlog_find_head / xlog_check_unmount_rec
// in the kernel, simplified: anything it cannot read that way is not clean). Not understood, so
// kept whole: a log that needs replay, an external log, a realtime device, a file system being
// made or flagged as needing repair. On v5 the superblock, each AGF and each tree block must
// pass its CRC-32C and name its own address (as the kernel's verifiers check them: a flipped
// bit in a free-space record would zero used blocks). Pure over a ReadAt; XFS is big-endian.
import { crc32cFieldHolds } from "./crc.ts";
import { NotUnderstood, type ReadAt } from "./reader.ts";
import { markFree, markUsed, newUsedMap, type UsedMap } from "./used_map.ts";

const be16 = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];
const be32 = (b: Uint8Array, at: number) =>
  ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
function be64(b: Uint8Array, at: number): number {
  const v = be32(b, at) * 2 ** 32 + be32(b, at + 4);
  if (!Number.isSafeInteger(v)) throw new NotUnderstood(`XFS field at byte ${at} is beyond 2^53`);
  return v;
}

const XFSB = 0x58465342;
const XAGF = 0x58414746;
const ABTB = 0x41425442; // bnobt block, v4
const AB3B = 0x41423342; // bnobt block, v5 (CRC)
const LOG_MAGIC = 0xfeedbabe;
const VERSION_5 = 5;
const INCOMPAT_NEEDSREPAIR = 0x10;
const UNMOUNT_TRANS = 0x20;
const BB = 512;
// Where v5 keeps each structure's CRC-32C (xfs_format.h: XFS_SB_CRC_OFF, XFS_AGF_CRC_OFF,
// XFS_BTREE_SBLOCK_CRC_OFF) and a short-form tree block its own disk address (bb_blkno).
const SB_CRC = 224;
const AGF_CRC = 216;
const SBLOCK_CRC = 52;
const SBLOCK_BLKNO = 16;

/** On v5: `b` must pass its CRC-32C at `at`, or `what` is not trusted. */
function checkCrc(s: XfsSuper, b: Uint8Array, at: number, what: string) {
  if (s.version === VERSION_5 && !crc32cFieldHolds(b, at)) {
    throw new NotUnderstood(`XFS ${what} fails its CRC`);
  }
}

export interface XfsSuper {
  blockSize: number;
  blocks: number;
  agBlocks: number;
  agCount: number;
  logStart: number;
  logBlocks: number;
  version: number;
  sectSize: number;
  agBlockLog: number;
}

/** The superblock (sector 0 of AG 0), or null when this is no XFS. */
export function xfsSuper(sb: Uint8Array): XfsSuper | null {
  if (be32(sb, 0) !== XFSB) return null;
  const s: XfsSuper = {
    blockSize: be32(sb, 4),
    blocks: be64(sb, 8),
    agBlocks: be32(sb, 84),
    agCount: be32(sb, 88),
    logStart: be64(sb, 48),
    logBlocks: be32(sb, 96),
    version: be16(sb, 100) & 0xf,
    sectSize: be16(sb, 102),
    agBlockLog: sb[124],
  };
  const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
  if (
    !pow2(s.blockSize) || s.blockSize < 512 || s.blockSize > 65536 || !pow2(s.sectSize) ||
    s.agBlocks === 0 || s.agCount === 0 || 2 ** s.agBlockLog < s.agBlocks ||
    (s.agCount - 1) * s.agBlocks >= s.blocks || s.agCount * s.agBlocks < s.blocks
  ) {
    throw new NotUnderstood("XFS superblock has an impossible geometry");
  }
  if (be64(sb, 16) !== 0) throw new NotUnderstood("XFS with a realtime device");
  if (sb[126] !== 0) throw new NotUnderstood("XFS is still being made (sb_inprogress)");
  if (s.version === VERSION_5 && be32(sb, 216) & INCOMPAT_NEEDSREPAIR) {
    throw new NotUnderstood("XFS is flagged as needing repair (run xfs_repair on the golden disk)");
  }
  if (s.logStart === 0) throw new NotUnderstood("XFS with an external log");
  return s;
}

/** Whether the internal log's last record is an unmount record (cleanly unmounted). */
export async function xfsLogClean(read: ReadAt, start: number, s: XfsSuper): Promise<boolean> {
  // fsblock -> byte: the AG number sits above agBlockLog bits.
  const ag = Math.floor(s.logStart / 2 ** s.agBlockLog);
  const agb = s.logStart % 2 ** s.agBlockLog;
  const logAt = start + (ag * s.agBlocks + agb) * s.blockSize;
  const bbs = (s.logBlocks * s.blockSize) / BB;
  // A block's cycle: its first word, or a record header's h_cycle (xlog_get_cycle).
  const cycle = async (n: number) => {
    const b = await read(logAt + n * BB, 8);
    return be32(b, 0) === LOG_MAGIC ? be32(b, 4) : be32(b, 0);
  };
  // The head: the first block of the log whose cycle is older than block 0's (every block is
  // stamped with its pass over the log), found by bisection; none older: the log's end.
  const first = await cycle(0);
  if (first === 0) return false;
  let head = bbs;
  if ((await cycle(bbs - 1)) !== first) {
    let lo = 0;
    let hi = bbs - 1; // cycle(lo) === first, cycle(hi) !== first
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if ((await cycle(mid)) === first) lo = mid;
      else hi = mid;
    }
    head = hi;
  }
  // The last record header before the head (data blocks start with their cycle number, so
  // only a header starts with the magic), no further back than the largest record (256 KiB).
  for (let n = head - 1; n >= 0 && head - n <= 512 + 64; n--) {
    const h = await read(logAt + n * BB, BB);
    if (be32(h, 0) !== LOG_MAGIC) continue;
    if (be32(h, 4) !== first || be32(h, 40) !== 1) return false; // h_cycle, h_num_logops
    // v2 logs with records over 32 KiB carry extra header blocks (h_size at 0x140).
    const version = be32(h, 8);
    const size = version & 2 ? be32(h, 0x140) : 0;
    const hblks = size > 32768 ? Math.ceil(size / 32768) : 1;
    if (n + hblks >= head) return false;
    const op = await read(logAt + (n + hblks) * BB, 12);
    return (op[9] & UNMOUNT_TRANS) !== 0;
  }
  return false;
}

/** The used-block map of the XFS at `start`, or null if it is no XFS. */
export async function xfsUsedMap(
  read: ReadAt,
  start: number,
  size: number,
): Promise<UsedMap | null> {
  if (size < 4096) return null;
  const s = xfsSuper(await read(start, 512));
  if (!s) return null;
  if (s.sectSize > 32768) throw new NotUnderstood(`XFS sector size ${s.sectSize} is impossible`);
  checkCrc(s, await read(start, s.sectSize), SB_CRC, "superblock");
  if (s.blocks * s.blockSize > size) {
    throw new NotUnderstood(`XFS (${s.blocks * s.blockSize} bytes) is larger than its partition`);
  }
  if (!(await xfsLogClean(read, start, s))) {
    throw new NotUnderstood(
      "XFS log needs replay (not cleanly unmounted: mount and unmount it, or run xfs_repair)",
    );
  }
  // Everything used, then each free extent of each AG cleared.
  const map = newUsedMap(start, s.blockSize, s.blocks);
  markUsed(map, 0, s.blocks);
  const header = s.version === VERSION_5 ? 56 : 16;
  for (let ag = 0; ag < s.agCount; ag++) {
    const agStart = ag * s.agBlocks;
    const agLength = Math.min(s.agBlocks, s.blocks - agStart);
    const agf = await read(start + agStart * s.blockSize + s.sectSize, s.sectSize);
    if (be32(agf, 0) !== XAGF || be32(agf, 8) !== ag || be32(agf, 12) !== agLength) {
      throw new NotUnderstood(`XFS AG ${ag} has no valid AGF`);
    }
    checkCrc(s, agf, AGF_CRC, `AG ${ag}'s AGF`);
    const free: [number, number][] = [];
    let visited = 0;
    const walk = async (agbno: number, level: number) => {
      if (agbno === 0 || agbno >= agLength || ++visited > agLength) {
        throw new NotUnderstood(`XFS AG ${ag} free-space tree names block ${agbno}`);
      }
      const b = await read(start + (agStart + agbno) * s.blockSize, s.blockSize);
      const magic = be32(b, 0);
      const v5 = s.version === VERSION_5;
      if (magic !== (v5 ? AB3B : ABTB) || be16(b, 4) !== level) {
        throw new NotUnderstood(`XFS AG ${ag} free-space tree block ${agbno} is not one`);
      }
      checkCrc(s, b, SBLOCK_CRC, `AG ${ag} free-space tree block ${agbno}`);
      const daddr = ((agStart + agbno) * s.blockSize) / BB;
      if (v5 && be64(b, SBLOCK_BLKNO) !== daddr) {
        throw new NotUnderstood(
          `XFS AG ${ag} free-space tree block ${agbno} names another address`,
        );
      }
      const n = be16(b, 6);
      if (level === 0) {
        if (header + n * 8 > s.blockSize) throw new NotUnderstood(`XFS AG ${ag} leaf overflows`);
        for (let i = 0; i < n; i++) {
          free.push([be32(b, header + 8 * i), be32(b, header + 8 * i + 4)]);
        }
        return;
      }
      const maxrecs = Math.floor((s.blockSize - header) / 12);
      if (n > maxrecs) throw new NotUnderstood(`XFS AG ${ag} node overflows`);
      for (let i = 0; i < n; i++) await walk(be32(b, header + maxrecs * 8 + 4 * i), level - 1);
    };
    const levels = be32(agf, 28);
    if (levels < 1 || levels > 16) {
      throw new NotUnderstood(`XFS AG ${ag} tree has ${levels} levels`);
    }
    await walk(be32(agf, 16), levels - 1);
    let freeBlocks = 0;
    for (const [first, count] of free) {
      if (count === 0 || first + count > agLength) {
        throw new NotUnderstood(`XFS AG ${ag} free extent ${first}+${count} is outside it`);
      }
      freeBlocks += count;
      markFree(map, agStart + first, count);
    }
    // The AGF's own count must agree, or the tree is not the one XFS reads.
    if (freeBlocks !== be32(agf, 52)) {
      throw new NotUnderstood(
        `XFS AG ${ag} free-space tree holds ${freeBlocks} blocks, its AGF says ${be32(agf, 52)}`,
      );
    }
  }
  return map;
}
