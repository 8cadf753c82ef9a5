// NTFS: the used clusters are the set bits of $Bitmap (MFT record 6), as ntfsclone and
// partclone.ntfs read them. The volume spans the boot sector's "total sectors"; the backup boot
// sector in the partition's last sector lies past it, so it is kept byte for byte. A volume
// marked dirty (not cleanly unmounted: $LogFile may still name clusters $Bitmap does not), one
// whose journal says Windows did not shut down cleanly (Fast Startup, hibernation: its $Bitmap
// may be stale; ntfs_logfile.ts) or a $Bitmap split over an attribute list is not understood
// and kept whole.
import { ascii, NotUnderstood, type ReadAt, u16, u32, u64 } from "./reader.ts";
import { journalState } from "./ntfs_logfile.ts";
import { newUsedMap, type UsedMap } from "./used_map.ts";

export interface NtfsGeometry {
  bytesPerSector: number;
  clusterSize: number;
  /** Sectors of the volume (the partition minus its last sector, normally). */
  totalSectors: number;
  mftCluster: number;
  recordSize: number;
}

/** The boot sector's geometry, or null if this is no NTFS boot sector. */
export function ntfsGeometry(boot: Uint8Array): NtfsGeometry | null {
  if (ascii(boot, 3, 8) !== "NTFS    " || boot[510] !== 0x55 || boot[511] !== 0xaa) return null;
  const bytesPerSector = u16(boot, 0x0b);
  const spcByte = boot[0x0d];
  const sectorsPerCluster = spcByte <= 0x80 ? spcByte : 2 ** (256 - spcByte);
  const clusterSize = bytesPerSector * sectorsPerCluster;
  const recByte = boot[0x40];
  const recordSize = recByte < 0x80 ? recByte * clusterSize : 2 ** (256 - recByte);
  const geometry = {
    bytesPerSector,
    clusterSize,
    totalSectors: u64(boot, 0x28),
    mftCluster: u64(boot, 0x30),
    recordSize,
  };
  const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
  if (
    !pow2(bytesPerSector) || bytesPerSector < 256 || bytesPerSector > 4096 ||
    !pow2(sectorsPerCluster) || clusterSize > 2 * 1024 * 1024 ||
    !pow2(recordSize) || recordSize < 256 || recordSize > 65536
  ) {
    throw new NotUnderstood(
      `NTFS boot sector has an impossible geometry (${bytesPerSector}-byte sectors, ${sectorsPerCluster} per cluster, ${recordSize}-byte records)`,
    );
  }
  return geometry;
}

/** Apply the update sequence (fixups) of an MFT record (or of an index block: magic "INDX")
 * in place; throws if torn. */
export function applyFixups(rec: Uint8Array, index: number, magic = "FILE"): void {
  const what = magic === "FILE" ? "MFT record" : `${magic} block`;
  if (ascii(rec, 0, 4) !== magic) {
    throw new NotUnderstood(`${what} ${index} is not a ${magic} record`);
  }
  const usaOffset = u16(rec, 4);
  const usaCount = u16(rec, 6);
  if (
    usaCount === 0 || usaOffset + usaCount * 2 > rec.length || (usaCount - 1) * 512 > rec.length
  ) {
    throw new NotUnderstood(`${what} ${index} has a bad update sequence array`);
  }
  const usn = u16(rec, usaOffset);
  for (let i = 1; i < usaCount; i++) {
    const end = i * 512 - 2;
    if (u16(rec, end) !== usn) throw new NotUnderstood(`${what} ${index} is torn (fixup ${i})`);
    rec[end] = rec[usaOffset + 2 * i];
    rec[end + 1] = rec[usaOffset + 2 * i + 1];
  }
}

export interface Attribute {
  type: number;
  nonResident: boolean;
  nameLength: number;
  /** The whole attribute record. */
  bytes: Uint8Array;
}

/** The attributes of a fixed-up MFT record. */
export function attributes(rec: Uint8Array, index: number): Attribute[] {
  const out: Attribute[] = [];
  let at = u16(rec, 0x14);
  while (at + 8 <= rec.length) {
    const type = u32(rec, at);
    if (type === 0xffffffff) return out;
    const length = u32(rec, at + 4);
    if (length < 16 || at + length > rec.length) {
      throw new NotUnderstood(`MFT record ${index} has a bad attribute at byte ${at}`);
    }
    out.push({
      type,
      nonResident: rec[at + 8] !== 0,
      nameLength: rec[at + 9],
      bytes: rec.subarray(at, at + length),
    });
    at += length;
  }
  throw new NotUnderstood(`MFT record ${index} has no end marker`);
}

/** A non-resident attribute's runs as [first cluster (LCN), clusters]; sparse runs are null. */
export function dataRuns(attr: Uint8Array): [number | null, number][] {
  const runs: [number | null, number][] = [];
  let at = u16(attr, 0x20);
  let lcn = 0;
  while (at < attr.length && attr[at] !== 0) {
    const header = attr[at++];
    const lenBytes = header & 0x0f;
    const offBytes = header >> 4;
    if (lenBytes === 0 || lenBytes > 8 || offBytes > 8 || at + lenBytes + offBytes > attr.length) {
      throw new NotUnderstood("NTFS data run list is malformed");
    }
    let length = 0;
    for (let i = lenBytes - 1; i >= 0; i--) length = length * 256 + attr[at + i];
    at += lenBytes;
    if (offBytes === 0) {
      runs.push([null, length]);
      continue;
    }
    let delta = 0;
    for (let i = offBytes - 1; i >= 0; i--) delta = delta * 256 + attr[at + i];
    if (attr[at + offBytes - 1] & 0x80) delta -= 2 ** (8 * offBytes);
    at += offBytes;
    lcn += delta;
    runs.push([lcn, length]);
  }
  return runs;
}

/** Read one MFT record from the start of the MFT (records 0-15 are contiguous there). */
export async function readRecord(read: ReadAt, start: number, g: NtfsGeometry, index: number) {
  const rec = new Uint8Array(
    await read(start + g.mftCluster * g.clusterSize + index * g.recordSize, g.recordSize),
  );
  applyFixups(rec, index);
  return rec;
}

const VOLUME_INFORMATION = 0x70;
const ATTRIBUTE_LIST = 0x20;
const DATA = 0x80;
const VOLUME_DIRTY = 0x0001;

/** The journal must say the volume was shut down cleanly (ntfs_logfile.ts says why). */
async function checkJournal(read: ReadAt, start: number, g: NtfsGeometry): Promise<void> {
  const data = attributes(await readRecord(read, start, g, 2), 2)
    .find((a) => a.type === DATA && a.nameLength === 0);
  if (!data?.nonResident) throw new NotUnderstood("NTFS $LogFile has no non-resident data");
  const state = await journalState(
    read,
    start,
    g.clusterSize,
    dataRuns(data.bytes),
    u64(data.bytes, 0x30),
  );
  if (state === "unclean") {
    throw new NotUnderstood(
      "NTFS $LogFile says Windows did not shut down cleanly (Fast Startup, hibernation or a " +
        "crash: its $Bitmap may be stale); shut Windows down fully (shutdown /s /t 0) first",
    );
  }
}

/** The used-cluster map of the NTFS volume at `start`, or null if it is no NTFS. */
export async function ntfsUsedMap(
  read: ReadAt,
  start: number,
  size: number,
): Promise<UsedMap | null> {
  const boot = await read(start, 512);
  const g = ntfsGeometry(boot);
  if (!g) return null;
  const volumeBytes = g.totalSectors * g.bytesPerSector;
  if (volumeBytes > size) {
    throw new NotUnderstood(
      `NTFS volume (${volumeBytes} bytes) is larger than its partition (${size})`,
    );
  }
  const clusters = Math.floor(volumeBytes / g.clusterSize);

  const volume = await readRecord(read, start, g, 3);
  for (const a of attributes(volume, 3)) {
    if (a.type === VOLUME_INFORMATION && !a.nonResident) {
      const value = a.bytes.subarray(u16(a.bytes, 0x14));
      if (u16(value, 10) & VOLUME_DIRTY) {
        throw new NotUnderstood("NTFS volume is marked dirty (not cleanly unmounted)");
      }
    }
  }

  await checkJournal(read, start, g);

  const bitmapRec = await readRecord(read, start, g, 6);
  const attrs = attributes(bitmapRec, 6);
  if (attrs.some((a) => a.type === ATTRIBUTE_LIST)) {
    throw new NotUnderstood("NTFS $Bitmap has an attribute list");
  }
  const data = attrs.find((a) => a.type === DATA && a.nameLength === 0);
  if (!data) throw new NotUnderstood("NTFS $Bitmap has no data attribute");
  const need = Math.ceil(clusters / 8);
  const map = newUsedMap(start, g.clusterSize, clusters);
  if (!data.nonResident) {
    const value = data.bytes.subarray(
      u16(data.bytes, 0x14),
      u16(data.bytes, 0x14) + u32(data.bytes, 0x10),
    );
    if (value.length < need) throw new NotUnderstood("NTFS $Bitmap is shorter than the volume");
    map.used.set(value.subarray(0, need));
    return map;
  }
  if (u64(data.bytes, 0x10) !== 0) {
    throw new NotUnderstood("NTFS $Bitmap data does not start at VCN 0");
  }
  const realSize = u64(data.bytes, 0x30);
  if (realSize < need) throw new NotUnderstood("NTFS $Bitmap is shorter than the volume");
  let got = 0;
  for (const [lcn, length] of dataRuns(data.bytes)) {
    if (got >= need) break;
    const bytes = Math.min(length * g.clusterSize, need - got);
    if (lcn === null) {
      got += bytes; // a sparse run reads as zeros: no cluster there is used
      continue;
    }
    if (lcn < 0 || lcn + length > clusters) {
      throw new NotUnderstood("NTFS $Bitmap run lies outside the volume");
    }
    map.used.set(await read(start + lcn * g.clusterSize, bytes), got);
    got += bytes;
  }
  if (got < need) throw new NotUnderstood("NTFS $Bitmap runs end before the volume does");
  return map;
}
