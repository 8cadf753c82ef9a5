// A human summary of a manifest. Pure: the CLI shell loads the manifest and prints this.
import {
  chunkCount,
  chunkLength,
  type Manifest,
  type ManifestLayout,
  type ManifestVolume,
  storedLength,
} from "./manifest.ts";
import { formatBytes } from "./kit/mod.ts";

export interface ManifestStats {
  chunks: number;
  zeroChunks: number;
  /** Zero chunks wholly in free blocks: never written on a PC. */
  freeChunks: number;
  /** Distinct non-zero chunks: the chunk files a slices folder holds. */
  uniqueChunks: number;
  /** Bytes in those chunk files (what a PC is sent, at most: compressed where stored zstd). */
  storedBytes: number;
  /** Bytes those chunks hold uncompressed. */
  plainBytes: number;
  /** (format 3) Of the unique chunks, those stored zstd-compressed. */
  zstdChunks: number;
  lastChunkLength: number;
}

export function manifestStats(m: Manifest): ManifestStats {
  const chunks = chunkCount(m.size, m.chunkSize);
  const seen = new Set<string>();
  let zeroChunks = 0;
  let freeChunks = 0;
  let storedBytes = 0;
  let plainBytes = 0;
  let zstdChunks = 0;
  m.chunks.forEach((c, i) => {
    if (c.free) freeChunks++;
    if (c.zero) zeroChunks++;
    else if (!seen.has(c.sha256)) {
      seen.add(c.sha256);
      storedBytes += storedLength(m, i);
      plainBytes += chunkLength(m, i);
      if (c.zstd !== undefined) zstdChunks++;
    }
  });
  return {
    chunks,
    zeroChunks,
    freeChunks,
    uniqueChunks: seen.size,
    storedBytes,
    plainBytes,
    zstdChunks,
    lastChunkLength: chunkLength(m, chunks - 1),
  };
}

function sized(n: number): string {
  return n < 1024 ? `${n} bytes` : `${formatBytes(n)} (${n} bytes)`;
}

/** The summary `cascade info` prints: one "label  value" line per fact. */
export function renderInfo(m: Manifest, imageId: string): string {
  const s = manifestStats(m);
  const rows: [string, string][] = [
    ["Name", m.name],
    ["Size", sized(m.size)],
    ["Chunk size", sized(m.chunkSize)],
    [
      "Chunks",
      s.lastChunkLength === m.chunkSize
        ? String(s.chunks)
        : `${s.chunks} (the last one ${s.lastChunkLength} bytes)`,
    ],
    [
      "Zero chunks",
      m.layout ? `${s.zeroChunks} (${s.freeChunks} wholly free)` : String(s.zeroChunks),
    ],
    [
      "Unique chunks stored",
      m.format === 3
        ? `${s.uniqueChunks} (${s.zstdChunks} zstd, ${s.uniqueChunks - s.zstdChunks} raw)`
        : String(s.uniqueChunks),
    ],
    [
      "Bytes stored",
      m.format === 3
        ? `${sized(s.storedBytes)}, zstd of ${sized(s.plainBytes)} (${
          (100 * s.storedBytes / Math.max(1, s.plainBytes)).toFixed(1)
        } %)`
        : sized(s.storedBytes),
    ],
    ["Image id", imageId],
    ...(m.md5 !== undefined ? [["Image MD5", m.md5] as [string, string]] : []),
    ...(m.sha256 !== undefined ? [["Image SHA-256", m.sha256] as [string, string]] : []),
    ...(m.layout ? layoutRows(m.layout) : []),
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${(k + ":").padEnd(width)}${v}`).join("\n") + "\n";
}

const SCHEME_LABEL = { mbr: "MBR", gpt: "GPT", none: "no partition table" } as const;

/** One line for a volume: where, what, and how much of it is used and free. */
export function volumeLine(v: ManifestVolume): string {
  const what = [v.typeName ?? v.type, v.name ? `"${v.name}"` : undefined].filter(Boolean);
  const head = `${what.length ? what.join(" ") + ", " : ""}${formatBytes(v.size)} at ${v.start}`;
  if (v.fs === null) return `${head}: no file system understood, kept whole`;
  if (v.note) return `${head}: ${v.fs}, kept whole (${v.note})`;
  const dropped = v.dropped ? ` (with the contents of ${v.dropped}, past their first MiB)` : "";
  return `${head}: ${v.fs}, ${formatBytes(v.size - v.free)} used, ${
    formatBytes(v.free)
  } free${dropped}`;
}

function layoutRows(l: ManifestLayout): [string, string][] {
  const rows: [string, string][] = [["Partition table", SCHEME_LABEL[l.scheme]]];
  for (const v of l.volumes) {
    rows.push([v.number === 0 ? "Whole disk" : `Partition ${v.number}`, volumeLine(v)]);
  }
  return rows;
}
