// ext2/3/4: the used blocks are the set bits of each block group's block bitmap, as e2fsprogs
// (and partclone.extfs through it) reads them. With a group descriptor checksum (uninit_bg or
// metadata_csum), a group flagged BLOCK_UNINIT has no bitmap on disk: its used blocks are then
// only its superblock/descriptor backup and the bitmaps and inode tables that lie in it (with
// flex_bg those of other groups too), which is what e2fsprogs' mark_uninit_bg_group_blocks
// marks. Every group's bitmaps, inode table and backups are marked used besides, whatever its
// bitmap says (a superset is always safe). Not understood, so kept whole: a journal that needs
// recovery (replay writes blocks the bitmaps do not know), a file system not cleanly unmounted
// or with errors recorded (as partclone.extfs refuses them), meta_bg, an external journal
// device, snapshots. bigalloc is read per cluster. A bit flipped in a bitmap would zero a used
// block, so the metadata is checked first, as the kernel and libext2fs check it: the
// superblock's, each group descriptor's and each block bitmap's checksum (metadata_csum, or
// uninit_bg's CRC-16), and each bitmap's free bits against its descriptor's free count (this one
// on ext2/3 too).
import { crc16, crc32cRaw } from "./crc.ts";
import { NotUnderstood, type ReadAt, u16, u32 } from "./reader.ts";
import { markUsed, newUsedMap, type UsedMap } from "./used_map.ts";

const EXT_MAGIC = 0xef53;
const STATE_VALID = 0x1;
const STATE_ERROR = 0x2;
const COMPAT_RESIZE_INODE = 0x10;
const INCOMPAT_RECOVER = 0x4;
const INCOMPAT_JOURNAL_DEV = 0x8;
const INCOMPAT_META_BG = 0x10;
const INCOMPAT_64BIT = 0x80;
const INCOMPAT_FLEX_BG = 0x200;
const INCOMPAT_CSUM_SEED = 0x2000;
const RO_COMPAT_SPARSE_SUPER = 0x1;
const RO_COMPAT_GDT_CSUM = 0x10;
const RO_COMPAT_HAS_SNAPSHOT = 0x80;
const RO_COMPAT_BIGALLOC = 0x200;
const RO_COMPAT_METADATA_CSUM = 0x400;
const COMPAT_SPARSE_SUPER2 = 0x200;
const BG_BLOCK_UNINIT = 0x2;

export interface ExtSuper {
  blockSize: number;
  clusterRatio: number;
  blocks: number;
  firstDataBlock: number;
  blocksPerGroup: number;
  clustersPerGroup: number;
  groups: number;
  descSize: number;
  reservedGdtBlocks: number;
  inodesPerGroup: number;
  inodeSize: number;
  compat: number;
  incompat: number;
  roCompat: number;
  backupBgs: [number, number];
  /** s_state: VALID_FS (1) once cleanly unmounted or checked, ERROR_FS (2) with errors found. */
  state: number;
  /** The seed of metadata_csum's CRC-32Cs (of the UUID, or s_checksum_seed). */
  csumSeed: number;
  /** The UUID, which uninit_bg's descriptor CRC-16 starts from. */
  uuid: Uint8Array;
  /** "ext4" with extents or flex_bg or 64bit, "ext3" with a journal, else "ext2". */
  kind: "ext2" | "ext3" | "ext4";
}

/** The superblock (the 1024 bytes at byte 1024 of the file system), or null if none. */
export function extSuper(sb: Uint8Array): ExtSuper | null {
  if (u16(sb, 0x38) !== EXT_MAGIC) return null;
  const logBlock = u32(sb, 0x18);
  const logCluster = u32(sb, 0x1c);
  if (logBlock > 6 || logCluster < logBlock || logCluster > logBlock + 16) {
    throw new NotUnderstood(`ext superblock has an impossible block size (log ${logBlock})`);
  }
  const blockSize = 1024 << logBlock;
  const incompat = u32(sb, 0x60);
  const roCompat = u32(sb, 0x64);
  const compat = u32(sb, 0x5c);
  const blocks = u32(sb, 0x04) + (incompat & INCOMPAT_64BIT ? u32(sb, 0x150) * 2 ** 32 : 0);
  const blocksPerGroup = u32(sb, 0x20);
  const clustersPerGroup = u32(sb, 0x24);
  const firstDataBlock = u32(sb, 0x14);
  const clusterRatio = roCompat & RO_COMPAT_BIGALLOC ? 2 ** (logCluster - logBlock) : 1;
  const descSize = incompat & INCOMPAT_64BIT ? u16(sb, 0xfe) : 32;
  if (
    blocksPerGroup === 0 || blocks <= firstDataBlock || descSize < 32 || descSize > 1024 ||
    clustersPerGroup * clusterRatio !== blocksPerGroup || clustersPerGroup > 8 * blockSize
  ) {
    throw new NotUnderstood("ext superblock has an impossible group layout");
  }
  const kind = incompat & (0x40 | INCOMPAT_FLEX_BG | INCOMPAT_64BIT)
    ? "ext4"
    : compat & 0x4
    ? "ext3"
    : "ext2";
  return {
    blockSize,
    clusterRatio,
    blocks,
    firstDataBlock,
    blocksPerGroup,
    clustersPerGroup,
    groups: Math.ceil((blocks - firstDataBlock) / blocksPerGroup),
    descSize,
    reservedGdtBlocks: compat & COMPAT_RESIZE_INODE ? u16(sb, 0xce) : 0,
    inodesPerGroup: u32(sb, 0x28),
    inodeSize: u32(sb, 0x4c) === 0 ? 128 : u16(sb, 0x58),
    compat,
    incompat,
    roCompat,
    backupBgs: [u32(sb, 0x24c), u32(sb, 0x250)],
    state: u16(sb, 0x3a),
    csumSeed: incompat & INCOMPAT_CSUM_SEED
      ? u32(sb, 0x270)
      : crc32cRaw(0xffffffff, sb.subarray(0x68, 0x78)),
    uuid: sb.slice(0x68, 0x78),
    kind,
  };
}

function isPowerOf(n: number, base: number): boolean {
  while (n > 1 && n % base === 0) n /= base;
  return n === 1;
}

/** Does group `g` hold a superblock backup (ext2fs_bg_has_super)? */
export function groupHasSuper(s: ExtSuper, g: number): boolean {
  if (g === 0) return true;
  if (s.compat & COMPAT_SPARSE_SUPER2) return g === s.backupBgs[0] || g === s.backupBgs[1];
  if (g <= 1 || !(s.roCompat & RO_COMPAT_SPARSE_SUPER)) return true;
  if (!(g & 1)) return false;
  return isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7);
}

/** The used-block map (one unit per cluster) of the ext file system at `start`, or null. */
export async function extUsedMap(
  read: ReadAt,
  start: number,
  size: number,
): Promise<{ kind: ExtSuper["kind"]; map: UsedMap } | null> {
  if (size < 2048) return null;
  const sbBytes = await read(start + 1024, 1024);
  const s = extSuper(sbBytes);
  if (!s) return null;
  const metaCsum = (s.roCompat & RO_COMPAT_METADATA_CSUM) !== 0;
  if (metaCsum) {
    const stored = u32(sbBytes, 0x3fc);
    const computed = crc32cRaw(0xffffffff, sbBytes.subarray(0, 0x3fc));
    if (sbBytes[0x175] !== 1 || stored !== computed) {
      throw new NotUnderstood(
        `${s.kind} superblock fails its checksum (${hex(stored, 8)} stored, ${
          hex(computed, 8)
        } computed)`,
      );
    }
  }
  if (s.incompat & INCOMPAT_RECOVER) {
    throw new NotUnderstood(`${s.kind} journal needs recovery (not cleanly unmounted)`);
  }
  // As partclone.extfs refuses them: the bitmaps of a file system mounted without a journal,
  // or with errors the kernel found, may not name every block in use.
  if (s.state & STATE_ERROR) {
    throw new NotUnderstood(`${s.kind} has errors recorded (run e2fsck on the golden disk)`);
  }
  if (!(s.state & STATE_VALID)) {
    throw new NotUnderstood(`${s.kind} was not cleanly unmounted (run e2fsck on the golden disk)`);
  }
  if (s.incompat & INCOMPAT_JOURNAL_DEV) throw new NotUnderstood("ext journal device");
  if (s.incompat & INCOMPAT_META_BG) throw new NotUnderstood(`${s.kind} with meta_bg`);
  if (s.roCompat & RO_COMPAT_HAS_SNAPSHOT) throw new NotUnderstood(`${s.kind} with snapshots`);
  if (s.blocks * s.blockSize > size) {
    throw new NotUnderstood(
      `${s.kind} (${s.blocks * s.blockSize} bytes) is larger than its partition (${size})`,
    );
  }
  const csum = (s.roCompat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM)) !== 0;
  const bs = s.blockSize;
  // The descriptors follow the superblock's block: block 2 with 1 KiB blocks, where bigalloc
  // makes the first data block 0 (e2fsprogs' ext2fs_descriptor_block_loc2).
  const superBlock = s.firstDataBlock === 0 && bs === 1024 ? 1 : s.firstDataBlock;
  const gdtBlock = superBlock + 1;
  const gdtBlocks = Math.ceil((s.groups * s.descSize) / bs);
  const gdt = await read(start + gdtBlock * bs, gdtBlocks * bs);

  // Units are clusters; block b lies in cluster floor(b / ratio).
  const clusters = Math.ceil(s.blocks / s.clusterRatio);
  const map = newUsedMap(start, bs * s.clusterRatio, clusters);
  const markBlocks = (first: number, count: number) => {
    if (count <= 0) return;
    const c0 = Math.floor(first / s.clusterRatio);
    const c1 = Math.floor((first + count - 1) / s.clusterRatio);
    markUsed(map, c0, c1 - c0 + 1);
  };
  const inodeTableBlocks = Math.ceil((s.inodesPerGroup * s.inodeSize) / bs);
  // The boot block(s) before the first data block are the file system's too.
  markBlocks(0, s.firstDataBlock + 1);
  for (let g = 0; g < s.groups; g++) {
    const d = gdt.subarray(g * s.descSize, (g + 1) * s.descSize);
    const hi = (at: number) => (s.descSize >= 64 ? u32(d, at) * 2 ** 32 : 0);
    const blockBitmap = u32(d, 0x00) + hi(0x20);
    const inodeBitmap = u32(d, 0x04) + hi(0x24);
    const inodeTable = u32(d, 0x08) + hi(0x28);
    const flags = u16(d, 0x12);
    checkDescriptor(s, g, d, metaCsum);
    for (const [b, n] of [[blockBitmap, 1], [inodeBitmap, 1], [inodeTable, inodeTableBlocks]]) {
      if (b < s.firstDataBlock || b + n > s.blocks) {
        throw new NotUnderstood(
          `${s.kind} group ${g} names a block outside the file system (${b})`,
        );
      }
      markBlocks(b, n);
    }
    const groupStart = s.firstDataBlock + g * s.blocksPerGroup;
    if (groupHasSuper(s, g)) {
      markBlocks(g === 0 ? superBlock : groupStart, 1 + gdtBlocks + s.reservedGdtBlocks);
    }
    if (csum && flags & BG_BLOCK_UNINIT) continue;
    // The group's bits: cluster k of the group is cluster (groupStart / ratio) + k.
    const bits = await read(start + blockBitmap * bs, Math.ceil(s.clustersPerGroup / 8));
    const base = Math.floor(groupStart / s.clusterRatio);
    const n = Math.min(s.clustersPerGroup, clusters - base);
    checkBitmap(s, g, d, bits, n, metaCsum);
    if (base % 8 === 0) {
      const whole = n >> 3;
      for (let i = 0; i < whole; i++) map.used[(base >> 3) + i] |= bits[i];
      for (let k = whole * 8; k < n; k++) {
        if (bits[k >> 3] & (1 << (k & 7))) markUsed(map, base + k);
      }
    } else {
      for (let k = 0; k < n; k++) if (bits[k >> 3] & (1 << (k & 7))) markUsed(map, base + k);
    }
  }
  return { kind: s.kind, map };
}

const hex = (n: number, digits = 4) => `0x${n.toString(16).padStart(digits, "0")}`;

/** Group `g`'s descriptor `d` against its checksum (metadata_csum's CRC-32C or uninit_bg's
 * CRC-16, over the group number and the descriptor with its checksum field left out). */
function checkDescriptor(s: ExtSuper, g: number, d: Uint8Array, metaCsum: boolean) {
  const gdtCsum = (s.roCompat & RO_COMPAT_GDT_CSUM) !== 0;
  if (!metaCsum && !gdtCsum) return;
  const group = new Uint8Array(4);
  new DataView(group.buffer).setUint32(0, g, true);
  const head = d.subarray(0, 0x1e);
  const tail = d.subarray(0x20);
  let computed: number;
  if (metaCsum) {
    let c = crc32cRaw(s.csumSeed, group);
    c = crc32cRaw(c, head);
    c = crc32cRaw(c, new Uint8Array(2));
    computed = crc32cRaw(c, tail) & 0xffff;
  } else {
    let c = crc16(0xffff, s.uuid);
    c = crc16(c, group);
    c = crc16(c, head);
    computed = d.length > 0x20 ? crc16(c, tail) : c;
  }
  const stored = u16(d, 0x1e);
  if (stored !== computed) {
    throw new NotUnderstood(
      `${s.kind} group ${g}'s descriptor fails its checksum (${hex(stored)} stored, ${
        hex(computed)
      } computed)`,
    );
  }
}

const ONES = Uint8Array.from({ length: 256 }, (_, b) => {
  let n = 0;
  for (let v = b; v; v >>= 1) n += v & 1;
  return n;
});

/** Group `g`'s block bitmap `bits` (`n` clusters) against its checksum (metadata_csum) and its
 * descriptor's count of free clusters. */
function checkBitmap(
  s: ExtSuper,
  g: number,
  d: Uint8Array,
  bits: Uint8Array,
  n: number,
  metaCsum: boolean,
) {
  if (metaCsum) {
    const wide = s.descSize >= 0x3a;
    const stored = u16(d, 0x18) + (wide ? u16(d, 0x38) * 0x10000 : 0);
    const full = crc32cRaw(s.csumSeed, bits.subarray(0, s.clustersPerGroup >> 3));
    const computed = wide ? full : full & 0xffff;
    if (stored !== computed) {
      throw new NotUnderstood(
        `${s.kind} group ${g}'s block bitmap fails its checksum (${
          hex(stored, wide ? 8 : 4)
        } stored, ${hex(computed, wide ? 8 : 4)} computed)`,
      );
    }
  }
  let used = 0;
  for (let i = 0; i < n >> 3; i++) used += ONES[bits[i]];
  for (let k = n & ~7; k < n; k++) if (bits[k >> 3] & (1 << (k & 7))) used++;
  const free = u16(d, 0x0c) + (s.descSize >= 64 ? u16(d, 0x2c) * 0x10000 : 0);
  if (n - used !== free) {
    throw new NotUnderstood(
      `${s.kind} group ${g}'s block bitmap has ${
        n - used
      } free clusters, its descriptor says ${free}`,
    );
  }
}
