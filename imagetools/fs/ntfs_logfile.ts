// NTFS's journal ($LogFile, MFT record 2): was the volume shut down cleanly? Windows' Fast
// Startup (on by default since Windows 8) and hibernation leave it open with metadata still in
// Windows' memory: $Bitmap on the disk may then not name every cluster in use, and a volume
// whose free clusters were zeroed by that map could lose data when Windows resumes or replays
// its journal. ntfs-3g (and so partclone.ntfs) refuses such a volume ("The disk contains an
// unclean file system"); here it is kept whole. The "volume dirty" flag alone does not show it.
//
// The judgement is ntfs-3g's (libntfs logfile.c): a journal that is all "empty" records (0xff,
// as ntfs-3g and mkntfs leave it) is clean; otherwise the newer of its two restart pages
// ("RSTR", or "CHKD" after chkdsk) decides: clean when no log client is in use or its restart
// area says RESTART_VOLUME_IS_CLEAN. A journal with neither is not understood. Pure over a
// ReadAt.
import { ascii, NotUnderstood, type ReadAt, u16, u32, u64 } from "./reader.ts";

const NO_CLIENT = 0xffff;
const VOLUME_IS_CLEAN = 0x0002;

export type JournalState = "clean" | "unclean";

/** The byte on the disk of byte `pos` of a file whose clusters are `runs` (LCN, count). */
export function diskOffset(
  runs: readonly [number | null, number][],
  start: number,
  clusterSize: number,
  pos: number,
): number | null {
  let vcn = 0;
  const want = Math.floor(pos / clusterSize);
  for (const [lcn, length] of runs) {
    if (want < vcn + length) {
      return lcn === null ? null : start + (lcn + want - vcn) * clusterSize + (pos % clusterSize);
    }
    vcn += length;
  }
  return null;
}

/**
 * Whether the journal whose data runs are `runs` (of `size` bytes, in clusters of
 * `clusterSize` from the volume at byte `start`) says the volume was shut down cleanly.
 */
export async function journalState(
  read: ReadAt,
  start: number,
  clusterSize: number,
  runs: readonly [number | null, number][],
  size: number,
): Promise<JournalState> {
  let empty = true;
  const pages: { lsn: number; clean: boolean }[] = [];
  // Restart pages start a page of the journal: look at 0, then 256 · 2^k (as ntfs-3g does).
  for (let pos = 0; pos + 512 <= size && pages.length < 2; pos = pos === 0 ? 256 : pos * 2) {
    const at = diskOffset(runs, start, clusterSize, pos);
    if (at === null) throw new NotUnderstood("NTFS $LogFile has a hole where a page starts");
    const head = await read(at, 512);
    const magic = ascii(head, 0, 4);
    if (u32(head, 0) !== 0xffffffff) empty = false;
    else if (!empty) break; // an empty page after a used one: no restart page follows
    if (magic === "RCRD") break; // log records: the restart pages are behind
    if (magic !== "RSTR" && magic !== "CHKD") continue;
    const ra = u16(head, 24);
    if (ra < 30 || ra + 16 > 510) {
      throw new NotUnderstood(`NTFS $LogFile restart page at ${pos} has its area at ${ra}`);
    }
    const inUse = u16(head, ra + 12);
    const flags = u16(head, ra + 14);
    pages.push({
      lsn: u64(head, ra),
      clean: inUse === NO_CLIENT || (flags & VOLUME_IS_CLEAN) !== 0,
    });
  }
  if (empty) return "clean";
  if (pages.length === 0) throw new NotUnderstood("NTFS $LogFile has no restart page");
  const newest = pages.reduce((a, b) => (b.lsn > a.lsn ? b : a));
  return newest.clean ? "clean" : "unclean";
}
