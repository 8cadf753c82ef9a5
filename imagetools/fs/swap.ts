// Linux swap: only the header page (its first page, signed "SWAPSPACE2" in its last 10 bytes)
// means anything once the system is off; the rest is stale memory. A swap area holding a
// hibernation image is signed otherwise ("S1SUSPEND", ...) and so is not understood: kept whole.
import { ascii, type ReadAt } from "./reader.ts";
import { markUsed, newUsedMap, type UsedMap } from "./used_map.ts";

const PAGE_SIZES = [4096, 8192, 16384, 65536];

/** The used map of a swap area at `start` (its header page used, the rest free), or null. */
export async function swapUsedMap(
  read: ReadAt,
  start: number,
  size: number,
): Promise<UsedMap | null> {
  for (const page of PAGE_SIZES) {
    if (size < 2 * page) break;
    const sig = ascii(await read(start + page - 10, 10), 0, 10);
    if (sig === "SWAPSPACE2" || sig === "SWAP-SPACE") {
      const map = newUsedMap(start, page, Math.floor(size / page));
      markUsed(map, 0);
      return map;
    }
  }
  return null;
}
