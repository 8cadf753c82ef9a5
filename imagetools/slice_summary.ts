// The text a slice run ends with (the CLI prints it): each partition's file system and use,
// then the totals.
import { volumeLine } from "./info.ts";
import { formatBytes } from "./kit/mod.ts";
import { MANIFEST_FORMAT_V3 } from "./manifest.ts";
import { layoutWorthRecording, type SliceResult } from "./slice.ts";

/** The lines for the end of a slice run: what each partition held, then the totals. */
export function sliceSummary(r: SliceResult): string {
  // Nothing found: the image was sliced as it is, and the summary says only that. A file system
  // kept whole is named, with why.
  const found = r.layout && layoutWorthRecording(r.layout) ? r.layout : undefined;
  const volumes = (found?.volumes ?? []).map((v) =>
    `${v.number === 0 ? "Whole disk" : `Partition ${v.number}`}: ${volumeLine(v)}\n`
  ).join("");
  const zeroed = found && found.maps.length > 0
    ? `; ${formatBytes(r.zeroedBytes)} of free blocks zeroed, ${r.freeChunks} chunks wholly free`
    : "";
  return `${volumes}Sliced "${r.manifest.name}" (${
    formatBytes(r.manifest.size)
  }) into ${r.chunks} chunks: ${r.zeroChunks} zero, ${r.storedChunks} stored (${
    formatBytes(r.storedBytes)
  }${
    r.manifest.format === MANIFEST_FORMAT_V3 ? `; ${formatBytes(r.plainBytes)} before zstd` : ""
  }) in "${r.dir}"${zeroed}`;
}
