// Windows' paging and hibernation files in an NTFS volume's root (pagefile.sys, swapfile.sys,
// hiberfil.sys): their contents are memory of the last session, worthless once Windows shut
// down cleanly (ntfs.ts refuses a volume whose journal says otherwise, so a hibernated or Fast
// Startup volume never gets here), and Windows rewrites them as it needs them. Imaging tools
// that know Windows leave them out (Macrium's intelligent sector copy, WIM images); they are
// often gigabytes of stale memory that compress poorly. Their clusters past the first MiB
// become free here: zeros in the image, never written on a PC. The first MiB (the hibernation
// and crash-dump headers) is kept as the golden disk has it, so a PC never boots with a stale
// header of its own left in place.
//
// Found by name through the root directory's $I30 index (its root and every index block); each
// hit is only believed once its own MFT record says the same: in use, a file, a base record,
// the sequence number the index named, a $FILE_NAME in the root with that name, one unnamed
// non-resident $DATA whose clusters all lie in the volume and are used in $Bitmap. Anything odd
// drops nothing (the file is kept). Pure over a ReadAt.
import { applyFixups, attributes, dataRuns, type NtfsGeometry, readRecord } from "./ntfs.ts";
import { diskOffset } from "./ntfs_logfile.ts";
import { NotUnderstood, type ReadAt, u16, u32, u64 } from "./reader.ts";
import { isUsed, type UsedMap } from "./used_map.ts";

/** The files whose contents are dropped, lower case (NTFS names are case-insensitive). */
export const TRANSIENT_FILES = ["pagefile.sys", "swapfile.sys", "hiberfil.sys"] as const;
/** Bytes at the start of each such file that are kept. */
export const TRANSIENT_HEAD = 1024 * 1024;

const ROOT = 5;
const FILE_NAME = 0x30;
const ATTRIBUTE_LIST = 0x20;
const DATA = 0x80;
const INDEX_ROOT = 0x90;
const INDEX_ALLOCATION = 0xa0;
const IN_USE = 0x1;
const DIRECTORY = 0x2;

export interface TransientFile {
  name: string;
  /** Its size in bytes, and the clusters (LCN, count) of it that are dropped. */
  size: number;
  dropped: [number, number][];
}

type Runs = [number | null, number][];

/** `length` bytes at byte `pos` of a file of clusters `runs`, or null across a hole. */
async function readFile(
  read: ReadAt,
  start: number,
  clusterSize: number,
  runs: Runs,
  pos: number,
  length: number,
): Promise<Uint8Array | null> {
  const out = new Uint8Array(length);
  for (let done = 0; done < length;) {
    const at = diskOffset(runs, start, clusterSize, pos + done);
    if (at === null) return null;
    const n = Math.min(length - done, clusterSize - ((pos + done) % clusterSize));
    out.set(await read(at, n), done);
    done += n;
  }
  return out;
}

function utf16(b: Uint8Array, at: number, chars: number): string {
  let s = "";
  for (let i = 0; i < chars; i++) s += String.fromCharCode(u16(b, at + 2 * i));
  return s;
}

/** A 48-bit MFT reference's record number. */
const recordOf = (b: Uint8Array, at: number) => u32(b, at) + u16(b, at + 4) * 2 ** 32;

/** The entries of one index node (header at `at`) naming a transient file in the root. */
function indexHits(node: Uint8Array, at: number, hits: Map<number, number>): void {
  const first = at + u32(node, at);
  const end = Math.min(node.length, at + u32(node, at + 4));
  for (let e = first; e + 16 <= end;) {
    const length = u16(node, e + 8);
    const keyLength = u16(node, e + 10);
    if (u32(node, e + 12) & 0x2 || length < 16 || e + length > end) return; // the last entry
    if (keyLength >= 0x42 && recordOf(node, e + 16) === ROOT) {
      const nameLength = node[e + 16 + 0x40];
      if (0x42 + 2 * nameLength <= keyLength) {
        const name = utf16(node, e + 16 + 0x42, nameLength).toLowerCase();
        if ((TRANSIENT_FILES as readonly string[]).includes(name)) {
          hits.set(recordOf(node, e), u16(node, e + 6));
        }
      }
    }
    e += length;
  }
}

/** The transient files of the NTFS volume at `start` whose contents can be dropped. */
export async function transientFiles(
  read: ReadAt,
  start: number,
  g: NtfsGeometry,
  map: UsedMap,
): Promise<TransientFile[]> {
  try {
    return await find(read, start, g, map);
  } catch (err) {
    // Whatever does not parse drops nothing: the files are then kept like any other.
    if (err instanceof NotUnderstood || err instanceof RangeError) return [];
    throw err;
  }
}

async function find(
  read: ReadAt,
  start: number,
  g: NtfsGeometry,
  map: UsedMap,
): Promise<TransientFile[]> {
  const { clusterSize, recordSize } = g;
  const mftAttrs = attributes(await readRecord(read, start, g, 0), 0);
  const mftData = mftAttrs.find((a) => a.type === DATA && a.nameLength === 0);
  if (mftAttrs.some((a) => a.type === ATTRIBUTE_LIST) || !mftData?.nonResident) return [];
  const mftRuns = dataRuns(mftData.bytes);
  const record = async (index: number) => {
    const rec = await readFile(read, start, clusterSize, mftRuns, index * recordSize, recordSize);
    if (!rec) return null;
    applyFixups(rec, index);
    return rec;
  };

  const root = await record(ROOT);
  if (!root) return [];
  const hits = new Map<number, number>(); // record -> sequence number
  let blockSize = 0;
  const rootAttrs = attributes(root, ROOT);
  for (const a of rootAttrs) {
    if (a.type !== INDEX_ROOT || a.nonResident) continue;
    const value = a.bytes.subarray(u16(a.bytes, 0x14), u16(a.bytes, 0x14) + u32(a.bytes, 0x10));
    blockSize = u32(value, 0x08);
    indexHits(value, 0x10, hits);
  }
  const alloc = rootAttrs.find((a) => a.type === INDEX_ALLOCATION && a.nonResident);
  if (alloc && blockSize >= 512 && blockSize <= 65536) {
    const runs = dataRuns(alloc.bytes);
    const size = u64(alloc.bytes, 0x30);
    for (let pos = 0, n = 0; pos + blockSize <= size && n < 4096; pos += blockSize, n++) {
      const block = await readFile(read, start, clusterSize, runs, pos, blockSize);
      if (!block) continue;
      try {
        applyFixups(block, n, "INDX");
      } catch {
        continue; // a block not in use (or torn): its entries are not believed anyway
      }
      indexHits(block, 0x18, hits);
    }
  }

  const found: TransientFile[] = [];
  for (const [index, sequence] of hits) {
    const rec = await record(index);
    if (!rec || u16(rec, 0x10) !== sequence || u64(rec, 0x20) !== 0) continue;
    if ((u16(rec, 0x16) & (IN_USE | DIRECTORY)) !== IN_USE) continue;
    const attrs = attributes(rec, index);
    if (attrs.some((a) => a.type === ATTRIBUTE_LIST)) continue;
    const names = attrs.filter((a) => a.type === FILE_NAME && !a.nonResident).map((a) => {
      const v = a.bytes.subarray(u16(a.bytes, 0x14));
      return recordOf(v, 0) === ROOT ? utf16(v, 0x42, v[0x40]).toLowerCase() : "";
    });
    const name = TRANSIENT_FILES.find((n) => names.includes(n));
    const data = attrs.filter((a) => a.type === DATA && a.nameLength === 0);
    if (!name || data.length !== 1 || !data[0].nonResident) continue;
    if (u64(data[0].bytes, 0x10) !== 0) continue;
    const runs = dataRuns(data[0].bytes);
    const owned = runs.every(([lcn, count]) => {
      if (lcn === null) return true;
      if (lcn < 0 || lcn + count > map.units) return false;
      for (let c = lcn; c < lcn + count; c++) if (!isUsed(map, c)) return false;
      return true;
    });
    if (!owned) continue;
    // Past the kept head, in whole clusters.
    let skip = Math.ceil(TRANSIENT_HEAD / clusterSize);
    const dropped: [number, number][] = [];
    for (const [lcn, count] of runs) {
      const keep = Math.min(skip, count);
      skip -= keep;
      if (lcn !== null && count > keep) dropped.push([lcn + keep, count - keep]);
    }
    if (dropped.length) found.push({ name, size: u64(data[0].bytes, 0x30), dropped });
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}
