// Reading slicing's chunks: only the bytes a chunk keeps come from the image; the free blocks of
// the file systems understood are zeros in the chunk without being read (a partly used chunk of
// a mostly free disk costs a read of its used blocks only, as partclone reads it).
import type { ImageSource } from "./image_io.ts";
import { type DiskLayout, keptRuns, zeroFreeBlocks } from "./fs/mod.ts";

/** Free gaps shorter than this inside a chunk are read with the bytes around them (one read
 * of a few KiB more costs less than a second read) and zeroed after the read. */
const READ_GAP = 32 * 1024;

/**
 * Fill `view` with the image's bytes from `offset`, free blocks of `layout` as zeros (all bytes
 * read when there is no layout). Returns the bytes of free blocks in it (read or not).
 */
export async function readChunk(
  src: ImageSource,
  layout: DiskLayout | undefined,
  offset: number,
  view: Uint8Array,
): Promise<number> {
  const end = offset + view.length;
  const runs = layout ? keptRuns(layout, offset, end, READ_GAP) : [[offset, end]];
  let at = offset;
  for (const [a, b] of runs) {
    if (a > at) view.fill(0, at - offset, a - offset);
    const n = await src.readAt(a, view.subarray(a - offset, b - offset));
    if (n !== b - a) {
      throw new Error(
        `Cannot slice "${src.path}": it ended at byte ${a + n}, expected ${src.size}`,
      );
    }
    at = b;
  }
  if (at < end) view.fill(0, at - offset, view.length);
  // The free blocks inside the runs read (short gaps) become zeros too; this counts them all.
  return layout ? zeroFreeBlocks(layout, offset, view) : 0;
}

/** The file-system parsers' view of an open image (reads outside the image are refused). */
export function readerOf(src: ImageSource) {
  return async (offset: number, length: number): Promise<Uint8Array> => {
    if (offset < 0 || length < 0 || offset + length > src.size) {
      throw new RangeError(
        `Cannot read ${length} bytes at offset ${offset} of "${src.path}": it is ${src.size} bytes`,
      );
    }
    const buf = new Uint8Array(length);
    const n = await src.readAt(offset, buf);
    if (n !== length) {
      throw new Error(`Cannot read "${src.path}": it ended at byte ${offset + n}`);
    }
    return buf;
  };
}
