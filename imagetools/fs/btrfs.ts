// Btrfs (Fedora and openSUSE install on it): copy-on-write, so the trees the superblock points at
// are a consistent whole once it was written; the used bytes are the data extents of the extent
// tree, mapped to the device through the chunk tree, every metadata chunk whole (both copies of
// a DUP one), the superblock copies and the first MiB, which Btrfs never allocates. Before
// a byte is zeroed the extents found must add up to the superblock's bytes_used exactly. Not
// understood, so kept whole: a tree log to replay (a crash after fsync), several devices,
// chunks striped in a way one device cannot hold, a tree block that is not where its chunk
// says, a superblock or tree block that fails its checksum (CRC-32C or SHA-256, checked as the
// kernel checks them; xxhash64 and BLAKE2b, which node:crypto lacks, rely on the other checks).
// Pure over a ReadAt.
import { createHash } from "node:crypto";
import { crc32c } from "./crc.ts";
import { ascii, NotUnderstood, type ReadAt, u16, u32, u64 } from "./reader.ts";
import { markUsed, newUsedMap, type UsedMap } from "./used_map.ts";

const SUPER_AT = 0x10000;
const MIRRORS = [0x10000, 0x4000000, 0x4000000000]; // 64 KiB, 64 MiB, 256 GiB
const HEADER = 101;
const CHUNK_ITEM = 228;
const ROOT_ITEM = 132;
const EXTENT_TREE = 2;
const EXTENT_ITEM = 168;
const METADATA_ITEM = 169;
const INCOMPAT_METADATA_UUID = 1 << 10;
/** Incompat features understood (bits 0-11: up to RAID1C34; chunks are checked one by one);
 * zoned devices, extent tree v2, the RAID stripe tree and later are not. */
const INCOMPAT_KNOWN = (1 << 12) - 1;
// A chunk's profile bits: one device holds SINGLE (none of these) and DUP.
const DUP = 1 << 5;
const SYSTEM = 1 << 1;
const METADATA = 1 << 2;
const STRIPED = (1 << 3) | (1 << 4) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10);

const CSUM_CRC32C = 0;
const CSUM_SHA256 = 2;

/** Whether block `b` holds its own checksum of type `type` in its first bytes (of b[32..]);
 * true for the types not checked here. */
function csumHolds(b: Uint8Array, type: number): boolean {
  const body = b.subarray(32);
  if (type === CSUM_CRC32C) {
    const c = crc32c(body);
    return b[0] === (c & 255) && b[1] === ((c >>> 8) & 255) && b[2] === ((c >>> 16) & 255) &&
      b[3] === c >>> 24;
  }
  if (type === CSUM_SHA256) {
    const d = createHash("sha256").update(body).digest();
    return d.every((x, i) => b[i] === x);
  }
  return true;
}

/** A key's u64, which may be a "negative" object id (the reloc trees, -7 and -8): those read as
 * -1, never an extent or a chunk. */
function anyU64(b: Uint8Array, at: number): number {
  const v = u32(b, at) + u32(b, at + 4) * 2 ** 32;
  return Number.isSafeInteger(v) ? v : -1;
}

interface Chunk {
  logical: number;
  length: number;
  /** Holds tree blocks (METADATA or SYSTEM, mixed included): kept whole. */
  metadata: boolean;
  /** Physical offsets of its copies on the one device. */
  copies: number[];
}

function readChunk(b: Uint8Array, at: number, logical: number, devid: number): [Chunk, number] {
  const length = u64(b, at);
  const type = u64(b, at + 24);
  const stripes = u16(b, at + 44);
  const size = 48 + 32 * stripes;
  if (stripes === 0 || at + size > b.length) throw new NotUnderstood("Btrfs chunk item is cut");
  if (type & STRIPED || (stripes > 1 && !(type & DUP))) {
    throw new NotUnderstood(`Btrfs chunk at ${logical} is striped over ${stripes} (RAID)`);
  }
  const copies: number[] = [];
  for (let s = 0; s < stripes; s++) {
    if (u64(b, at + 48 + 32 * s) !== devid) {
      throw new NotUnderstood("Btrfs chunk on another device");
    }
    copies.push(u64(b, at + 56 + 32 * s));
  }
  return [{ logical, length, metadata: (type & (METADATA | SYSTEM)) !== 0, copies }, size];
}

/** The used-byte map (one unit per sector) of the Btrfs at `start`, or null if it is none. */
export async function btrfsUsedMap(
  read: ReadAt,
  start: number,
  size: number,
): Promise<UsedMap | null> {
  if (size < SUPER_AT + 4096) return null;
  const sb = await read(start + SUPER_AT, 4096);
  if (ascii(sb, 0x40, 8) !== "_BHRfS_M") return null;
  const csumType = u16(sb, 0xc4);
  if (!csumHolds(sb, csumType)) throw new NotUnderstood("Btrfs superblock fails its checksum");
  const total = u64(sb, 0x70);
  const bytesUsed = u64(sb, 0x78);
  const sector = u32(sb, 0x90);
  const nodeSize = u32(sb, 0x94);
  const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
  if (!pow2(sector) || sector < 512 || !pow2(nodeSize) || nodeSize < sector || total > size) {
    throw new NotUnderstood(
      "Btrfs superblock has an impossible geometry, or is larger than its partition",
    );
  }
  if (u64(sb, 0x88) !== 1) throw new NotUnderstood(`Btrfs on ${u64(sb, 0x88)} devices`);
  const incompat = u64(sb, 0xbc);
  if (incompat & ~INCOMPAT_KNOWN) {
    throw new NotUnderstood(`Btrfs with incompat features 0x${incompat.toString(16)}`);
  }
  if (u64(sb, 0x60) !== 0) {
    throw new NotUnderstood("Btrfs has a tree log to replay (mount and unmount it first)");
  }
  const devid = u64(sb, 0xc9);
  const fsid = sb.subarray(incompat & INCOMPAT_METADATA_UUID ? 0x23b : 0x20).subarray(0, 16);

  const chunks: Chunk[] = [];
  const sysSize = u32(sb, 0xa0);
  if (sysSize > 2048) throw new NotUnderstood("Btrfs system chunk array overflows");
  const sys = sb.subarray(0x32b, 0x32b + sysSize);
  for (let at = 0; at < sys.length;) {
    if (sys[at + 8] !== CHUNK_ITEM) throw new NotUnderstood("Btrfs system chunk array is odd");
    const [c, n] = readChunk(sys, at + 17, u64(sys, at + 9), devid);
    chunks.push(c);
    at += 17 + n;
  }
  const physical = (logical: number): number => {
    const c = chunks.find((c) => logical >= c.logical && logical < c.logical + c.length);
    if (!c) throw new NotUnderstood(`Btrfs names logical byte ${logical}, in no chunk`);
    return c.copies[0] + (logical - c.logical);
  };
  // Every leaf item of the tree rooted at `root` (logical), in key order.
  let budget = Math.ceil(total / nodeSize);
  const walk = async (
    root: number,
    level: number,
    visit: (leaf: Uint8Array, item: number) => void,
  ) => {
    if (--budget < 0) throw new NotUnderstood("Btrfs trees name more blocks than the disk holds");
    const node = await read(start + physical(root), nodeSize);
    if (
      u64(node, 48) !== root || node[100] !== level || !fsid.every((x, i) => node[32 + i] === x)
    ) {
      throw new NotUnderstood(`Btrfs tree block at ${root} is not the one its parent names`);
    }
    if (!csumHolds(node, csumType)) {
      throw new NotUnderstood(`Btrfs tree block at ${root} fails its checksum`);
    }
    const items = u32(node, 96);
    if (HEADER + items * (level ? 33 : 25) > nodeSize) {
      throw new NotUnderstood("Btrfs node overflows");
    }
    for (let i = 0; i < items; i++) {
      if (level) await walk(u64(node, HEADER + 33 * i + 17), level - 1, visit);
      else visit(node, i);
    }
  };
  const key = (leaf: Uint8Array, i: number) => {
    const at = HEADER + 25 * i;
    const data = HEADER + u32(leaf, at + 17);
    const length = u32(leaf, at + 21);
    if (data + length > leaf.length) throw new NotUnderstood("Btrfs leaf item overflows");
    return {
      objectid: anyU64(leaf, at),
      type: leaf[at + 8],
      offset: anyU64(leaf, at + 9),
      data: leaf.subarray(data, data + length),
    };
  };

  // The chunk tree: every chunk, the system ones again included.
  const all: Chunk[] = [];
  await walk(u64(sb, 0x58), sb[0xc7], (leaf, i) => {
    const k = key(leaf, i);
    if (k.type === CHUNK_ITEM) all.push(readChunk(k.data, 0, k.offset, devid)[0]);
  });
  chunks.splice(0, chunks.length, ...all);

  // The root tree names the extent tree's root.
  let extentRoot: [number, number] | undefined;
  await walk(u64(sb, 0x50), sb[0xc6], (leaf, i) => {
    const k = key(leaf, i);
    if (k.type === ROOT_ITEM && k.objectid === EXTENT_TREE && k.data.length >= 239) {
      extentRoot = [u64(k.data, 176), k.data[238]];
    }
  });
  if (!extentRoot) throw new NotUnderstood("Btrfs root tree names no extent tree");

  // Used: the metadata chunks whole (their free space holds the older generations' tree
  // blocks that the superblock's backup roots may name; partclone.btrfs keeps them too), the
  // data chunks' extents, the superblock copies and the first MiB. Free: the rest of each
  // data chunk, and the space no chunk holds.
  const map = newUsedMap(start, sector, Math.floor(total / sector));
  for (const c of chunks) {
    if (!c.metadata) continue;
    for (const p of c.copies) markUsed(map, Math.floor(p / sector), Math.ceil(c.length / sector));
  }
  let found = 0;
  const extents: [number, number][] = [];
  await walk(extentRoot[0], extentRoot[1], (leaf, i) => {
    const k = key(leaf, i);
    if (k.type === EXTENT_ITEM) extents.push([k.objectid, k.offset]);
    else if (k.type === METADATA_ITEM) extents.push([k.objectid, nodeSize]);
  });
  for (const [logical, length] of extents) {
    found += length;
    const c = chunks.find((c) => logical >= c.logical && logical + length <= c.logical + c.length);
    if (!c) throw new NotUnderstood(`Btrfs extent at ${logical} lies in no chunk`);
    for (const p of c.copies) {
      const at = p + (logical - c.logical);
      markUsed(map, Math.floor(at / sector), Math.ceil((at % sector + length) / sector));
    }
  }
  if (found !== bytesUsed) {
    throw new NotUnderstood(
      `Btrfs extents add up to ${found} bytes, its superblock says ${bytesUsed} are used`,
    );
  }
  for (const m of MIRRORS) if (m + 4096 <= total) markUsed(map, m / sector, 4096 / sector);
  markUsed(map, 0, Math.ceil(0x100000 / sector));
  return map;
}
