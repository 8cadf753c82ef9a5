// Partition tables: MBR (primary, extended and its chain of logical partitions) and GPT (the
// primary header and entries; the backup at the disk's end is never parsed, and like every table
// it lies outside the partitions, so it is kept byte for byte). Pure over a ReadAt.
//
// A GPT counts in the disk's logical sectors: 512 bytes, or 4096 on a 4Kn disk (its header is
// then at byte 4096, and bytes 512.. of sector 0 are zeros). An image does not say which, so
// the header is looked for at both. An MBR is read in 512-byte sectors only.
import { crc32 } from "node:zlib";
import { type ReadAt, u16, u32, u64 } from "./reader.ts";

export const SECTOR = 512;

export interface Partition {
  /** 1-based, as Linux numbers them (MBR logical partitions start at 5). */
  number: number;
  /** Byte offset and length on the disk. */
  start: number;
  size: number;
  /** MBR: the type byte as "0x83"; GPT: the type GUID in its usual text form. */
  type: string;
  /** GPT partition name (may be empty); absent on MBR. */
  name?: string;
}

export interface PartitionTable {
  scheme: "mbr" | "gpt" | "none";
  partitions: Partition[];
  /** Bytes per sector the table counts in: 512, or 4096 for a GPT of a 4Kn disk. */
  sectorSize: number;
}

/** The logical sector sizes a GPT is looked for in, in this order. */
const GPT_SECTOR_SIZES = [512, 4096] as const;

const EXTENDED = new Set([0x05, 0x0f, 0x85]);

/** A GUID's 16 bytes (mixed-endian, as GPT stores them) in text form, upper case. */
export function guidText(b: Uint8Array): string {
  const h = (i: number) => b[i].toString(16).padStart(2, "0");
  const run = (idx: number[]) => idx.map(h).join("");
  return [
    run([3, 2, 1, 0]),
    run([5, 4]),
    run([7, 6]),
    run([8, 9]),
    run([10, 11, 12, 13, 14, 15]),
  ].join("-").toUpperCase();
}

/** Human names for the partition types Cascade's disks carry most often. */
export const TYPE_NAMES: Record<string, string> = {
  "C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI system",
  "E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
  "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": "Microsoft basic data",
  "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery",
  "0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux filesystem",
  "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": "Linux swap",
  "21686148-6449-6E6F-744E-656564454649": "BIOS boot",
  "0x07": "NTFS/exFAT",
  "0x0b": "FAT32",
  "0x0c": "FAT32 (LBA)",
  "0x06": "FAT16",
  "0x0e": "FAT16 (LBA)",
  "0x01": "FAT12",
  "0x82": "Linux swap",
  "0x83": "Linux",
  "0xef": "EFI system",
};

interface MbrEntry {
  status: number;
  type: number;
  lba: number;
  sectors: number;
}

function mbrEntries(sector: Uint8Array): MbrEntry[] {
  const out: MbrEntry[] = [];
  for (let i = 0; i < 4; i++) {
    const at = 446 + 16 * i;
    out.push({
      status: sector[at],
      type: sector[at + 4],
      lba: u32(sector, at + 8),
      sectors: u32(sector, at + 12),
    });
  }
  return out;
}

function hasBootSignature(sector: Uint8Array): boolean {
  return sector[510] === 0x55 && sector[511] === 0xaa;
}

/** Is this first sector an MBR with at least one sane partition entry inside the disk? */
function isMbr(sector: Uint8Array, diskSize: number): boolean {
  if (!hasBootSignature(sector)) return false;
  const entries = mbrEntries(sector);
  if (entries.some((e) => e.status !== 0 && e.status !== 0x80)) return false;
  const used = entries.filter((e) => e.type !== 0 && e.sectors !== 0);
  return used.length > 0 &&
    used.every((e) => e.lba > 0 && (e.lba + e.sectors) * SECTOR <= diskSize);
}

function mbrPartition(number: number, e: MbrEntry, baseLba: number): Partition {
  return {
    number,
    start: (baseLba + e.lba) * SECTOR,
    size: e.sectors * SECTOR,
    type: `0x${e.type.toString(16).padStart(2, "0")}`,
  };
}

async function readMbr(read: ReadAt, first: Uint8Array, diskSize: number): Promise<Partition[]> {
  const parts: Partition[] = [];
  const entries = mbrEntries(first);
  for (let i = 0; i < 4; i++) {
    const e = entries[i];
    if (e.type === 0 || e.sectors === 0) continue;
    if (!EXTENDED.has(e.type)) {
      parts.push(mbrPartition(i + 1, e, 0));
      continue;
    }
    // The chain of EBRs: each holds one logical partition (relative to itself) and the link to
    // the next EBR (relative to the extended partition's start).
    const extStart = e.lba;
    const extEnd = e.lba + e.sectors;
    let ebr = extStart;
    let number = 5;
    const seen = new Set<number>();
    while (true) {
      if (seen.has(ebr) || ebr < extStart || ebr >= extEnd || seen.size > 1024) {
        throw new RangeError(`Invalid MBR: the chain of logical partitions loops at sector ${ebr}`);
      }
      seen.add(ebr);
      const sector = await read(ebr * SECTOR, SECTOR);
      if (!hasBootSignature(sector)) {
        throw new RangeError(`Invalid MBR: the extended boot record at sector ${ebr} is unsigned`);
      }
      const [logical, link] = mbrEntries(sector);
      if (logical.type !== 0 && logical.sectors !== 0) {
        const p = mbrPartition(number++, logical, ebr);
        if (p.start + p.size > extEnd * SECTOR || p.start + p.size > diskSize) {
          throw new RangeError(
            `Invalid MBR: logical partition ${p.number} ends past its extended partition`,
          );
        }
        parts.push(p);
      }
      if (link.type === 0 || link.sectors === 0) break;
      ebr = extStart + link.lba;
    }
  }
  return parts;
}

export interface GptHeader {
  sectorSize: number;
  headerSize: number;
  currentLba: bigint;
  backupLba: bigint;
  firstUsableLba: bigint;
  lastUsableLba: bigint;
  entriesLba: bigint;
  entries: number;
  entrySize: number;
  entriesCrc: number;
}

/** Parse and check a GPT header sector (CRC included); null when there is no "EFI PART". */
export function parseGptHeader(sector: Uint8Array, sectorSize: number): GptHeader | null {
  if (new TextDecoder().decode(sector.subarray(0, 8)) !== "EFI PART") return null;
  const v = new DataView(sector.buffer, sector.byteOffset, sector.byteLength);
  const headerSize = v.getUint32(12, true);
  if (headerSize < 92 || headerSize > sectorSize) {
    throw new RangeError(`Bad GPT header: header size ${headerSize} (expected 92..${sectorSize})`);
  }
  const copy = sector.slice(0, headerSize);
  new DataView(copy.buffer).setUint32(16, 0, true);
  const want = v.getUint32(16, true);
  const got = crc32(copy) >>> 0;
  if (got !== want) {
    throw new RangeError(
      `Bad GPT header: CRC32 ${want.toString(16)} recorded, ${got.toString(16)} computed`,
    );
  }
  return {
    sectorSize,
    headerSize,
    currentLba: v.getBigUint64(24, true),
    backupLba: v.getBigUint64(32, true),
    firstUsableLba: v.getBigUint64(40, true),
    lastUsableLba: v.getBigUint64(48, true),
    entriesLba: v.getBigUint64(72, true),
    entries: v.getUint32(80, true),
    entrySize: v.getUint32(84, true),
    entriesCrc: v.getUint32(88, true),
  };
}

async function readGpt(
  read: ReadAt,
  diskSize: number,
  ss: number,
): Promise<Partition[] | null> {
  const h = parseGptHeader(await read(ss, ss), ss);
  if (!h) return null;
  const { entries: count, entrySize } = h;
  if (entrySize < 128 || entrySize > 4096 || count > 4096) {
    throw new RangeError(
      `Invalid GPT: ${count} partition entries of ${entrySize} bytes are not a sane table`,
    );
  }
  const table = await read(Number(h.entriesLba) * ss, count * entrySize);
  // Entries that do not match their CRC are not the table the firmware and the OS read.
  const got = crc32(table) >>> 0;
  if (got !== h.entriesCrc) {
    throw new RangeError(
      `Bad GPT partition entries: CRC32 ${h.entriesCrc.toString(16)} recorded, ${
        got.toString(16)
      } computed`,
    );
  }
  const parts: Partition[] = [];
  for (let i = 0; i < count; i++) {
    const e = table.subarray(i * entrySize, (i + 1) * entrySize);
    if (e.subarray(0, 16).every((b) => b === 0)) continue;
    const first = u64(e, 32);
    const last = u64(e, 40);
    if (last < first || (last + 1) * ss > diskSize) {
      throw new RangeError(
        `Invalid GPT: partition ${i + 1} spans sectors ${first}..${last}, outside the disk`,
      );
    }
    let name = "";
    for (let j = 56; j + 1 < 128; j += 2) {
      const c = u16(e, j);
      if (c === 0) break;
      name += String.fromCharCode(c);
    }
    parts.push({
      number: i + 1,
      start: first * ss,
      size: (last - first + 1) * ss,
      type: guidText(e.subarray(0, 16)),
      name,
    });
  }
  return parts;
}

/**
 * The disk's partition table. A protective MBR (type 0xEE) means GPT, its header looked for in
 * 512- and then 4096-byte sectors; "none" means sector 0 is no partition table (a file system on
 * the whole disk, or something unknown).
 */
export async function readPartitionTable(
  read: ReadAt,
  diskSize: number,
): Promise<PartitionTable> {
  const none: PartitionTable = { scheme: "none", partitions: [], sectorSize: SECTOR };
  if (diskSize < 2 * SECTOR) return none;
  const first = await read(0, SECTOR);
  if (hasBootSignature(first) && mbrEntries(first).some((e) => e.type === 0xee)) {
    for (const ss of GPT_SECTOR_SIZES) {
      if (diskSize < 2 * ss) break;
      const gpt = await readGpt(read, diskSize, ss);
      if (gpt) return { scheme: "gpt", partitions: gpt, sectorSize: ss };
    }
  }
  if (!isMbr(first, diskSize)) return none;
  return { scheme: "mbr", partitions: await readMbr(read, first, diskSize), sectorSize: SECTOR };
}
