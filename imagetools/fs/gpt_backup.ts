// Move a GPT's backup header and partition entries to the end of a disk bigger than the image
// it was written from (what `sgdisk -e` does). Until then the backup sits where the image ended,
// and firmware and OS tools complain or "repair" the table.
//
// The disk's table is read with partitions.ts (readPartitionTable: a protective MBR, a GPT
// whose CRCs hold and whose partitions lie on the disk; parseGptHeader for the fields the move
// needs). Changed: the primary header's
// backup-LBA and last-usable-LBA fields and its CRC (LBA 1); written: the new backup entries
// and header in the disk's last sectors. The partition entries and every partition stay as they
// are; the old backup copy inside the image's bytes is left untouched. The new backup is
// written and synced before the primary header points at it, so a PC switched off halfway
// still has one valid pair.
//
// Pure core: planGptMove(primary header, entries, disk size) -> the writes; moveGptBackup does
// the reads and writes through a small block I/O interface.
import { crc32 } from "node:zlib";
import { parseGptHeader, readPartitionTable } from "./partitions.ts";
import type { ReadAt } from "./reader.ts";

export interface BlockIo {
  size: number;
  readAt(offset: number, into: Uint8Array): Promise<number>;
  writeAt(offset: number, bytes: Uint8Array): Promise<void>;
  sync(): Promise<void>;
}

function setHeaderCrc(sector: Uint8Array, headerSize: number): void {
  const v = new DataView(sector.buffer, sector.byteOffset, sector.byteLength);
  v.setUint32(16, 0, true);
  v.setUint32(16, crc32(sector.subarray(0, headerSize)) >>> 0, true);
}

export interface GptWrite {
  offset: number;
  bytes: Uint8Array;
  what: string;
}

export type GptPlan =
  | { action: "none"; why: string }
  | { action: "move"; writes: GptWrite[]; from: bigint; to: bigint };

/**
 * The writes that move the backup to the end of a disk of `diskSize` bytes, in the order to
 * make them (backup entries, backup header, then the primary header). Pure.
 */
export function planGptMove(
  primarySector: Uint8Array,
  entries: Uint8Array,
  diskSize: number,
): GptPlan {
  const ss = primarySector.length;
  const h = parseGptHeader(primarySector, ss);
  if (!h) return { action: "none", why: "no GPT on the disk" };
  const entryBytes = h.entries * h.entrySize;
  if (entries.length < entryBytes) {
    throw new RangeError(`Bad GPT: ${entries.length} bytes of entries given, ${entryBytes} needed`);
  }
  const gotCrc = crc32(entries.subarray(0, entryBytes)) >>> 0;
  if (gotCrc !== h.entriesCrc) {
    throw new RangeError(
      `Bad GPT partition entries: CRC32 ${h.entriesCrc.toString(16)} recorded, ${
        gotCrc.toString(16)
      } computed`,
    );
  }
  const lastLba = BigInt(Math.floor(diskSize / ss)) - 1n;
  if (h.backupLba === lastLba) return { action: "none", why: "the backup is at the disk's end" };
  if (h.backupLba > lastLba) {
    throw new RangeError(
      `Cannot move the GPT backup: it is at sector ${h.backupLba}, past the disk's last ${lastLba}`,
    );
  }
  const entrySectors = BigInt(Math.ceil(entryBytes / ss));
  const newEntriesLba = lastLba - entrySectors;
  const newLastUsable = newEntriesLba - 1n;

  const primary = primarySector.slice();
  const pv = new DataView(primary.buffer);
  pv.setBigUint64(32, lastLba, true);
  pv.setBigUint64(48, newLastUsable, true);
  setHeaderCrc(primary, h.headerSize);

  const backup = primary.slice();
  const bv = new DataView(backup.buffer);
  bv.setBigUint64(24, lastLba, true);
  bv.setBigUint64(32, 1n, true);
  bv.setBigUint64(72, newEntriesLba, true);
  setHeaderCrc(backup, h.headerSize);

  const entrySpan = new Uint8Array(Number(entrySectors) * ss);
  entrySpan.set(entries.subarray(0, entryBytes));
  return {
    action: "move",
    from: h.backupLba,
    to: lastLba,
    writes: [
      { offset: Number(newEntriesLba) * ss, bytes: entrySpan, what: "backup partition entries" },
      { offset: Number(lastLba) * ss, bytes: backup, what: "backup header" },
      { offset: ss, bytes: primary, what: "primary header" },
    ],
  };
}

async function readExactly(io: BlockIo, offset: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  const n = await io.readAt(offset, buf);
  if (n !== length) {
    throw new RangeError(`Cannot read ${length} bytes at byte ${offset}: got ${n}`);
  }
  return buf;
}

export interface GptMoveResult {
  moved: boolean;
  /** One sentence for the console and the dashboard. */
  message: string;
}

/** Move the GPT backup of the disk behind `io` to its end, if it has a GPT not there yet. */
export async function moveGptBackup(io: BlockIo, path: string): Promise<GptMoveResult> {
  const read: ReadAt = (offset, length) => readExactly(io, offset, length);
  const table = await readPartitionTable(read, io.size);
  if (table.scheme !== "gpt") {
    return { moved: false, message: `"${path}" has no GPT: nothing to move` };
  }
  const ss = table.sectorSize; // 512, or 4096 on a 4Kn disk
  const sector = await readExactly(io, ss, ss);
  const h = parseGptHeader(sector, ss);
  if (!h) return { moved: false, message: `"${path}" has no GPT header: nothing to move` };
  const entries = await readExactly(
    io,
    Number(h.entriesLba) * ss,
    Math.ceil((h.entries * h.entrySize) / ss) * ss,
  );
  const plan = planGptMove(sector, entries, io.size);
  if (plan.action === "none") {
    return { moved: false, message: `GPT of "${path}": ${plan.why}, nothing to move` };
  }
  for (const [i, w] of plan.writes.entries()) {
    try {
      await io.writeAt(w.offset, w.bytes);
      // The backup must be on the disk before the primary header points at it.
      if (i === 1 || i === plan.writes.length - 1) await io.sync();
    } catch (cause) {
      throw new Error(
        `Cannot write the GPT ${w.what} of "${path}" at byte ${w.offset}: ${
          (cause as Error).message
        }`,
        { cause },
      );
    }
  }
  return {
    moved: true,
    message:
      `GPT of "${path}": backup moved from sector ${plan.from} to the disk's end (${plan.to})`,
  };
}
