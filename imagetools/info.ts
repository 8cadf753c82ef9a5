// A human summary of a manifest. Pure: the CLI shell loads the manifest and prints this.
import { chunkCount, chunkLength, type Manifest } from "./manifest.ts";
import { formatBytes } from "./kit/mod.ts";

export interface ManifestStats {
  chunks: number;
  zeroChunks: number;
  /** Distinct non-zero chunks: the chunk files a slices folder holds. */
  uniqueChunks: number;
  /** Bytes in those chunk files. */
  storedBytes: number;
  lastChunkLength: number;
}

export function manifestStats(m: Manifest): ManifestStats {
  const chunks = chunkCount(m.size, m.chunkSize);
  const seen = new Set<string>();
  let zeroChunks = 0;
  let storedBytes = 0;
  m.chunks.forEach((c, i) => {
    if (c.zero) zeroChunks++;
    else if (!seen.has(c.sha256)) {
      seen.add(c.sha256);
      storedBytes += chunkLength(m, i);
    }
  });
  return {
    chunks,
    zeroChunks,
    uniqueChunks: seen.size,
    storedBytes,
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
    ["Zero chunks", String(s.zeroChunks)],
    ["Unique chunks stored", String(s.uniqueChunks)],
    ["Bytes stored", sized(s.storedBytes)],
    ["Image id", imageId],
    ["Image MD5", m.md5],
    ["Image SHA-256", m.sha256],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${(k + ":").padEnd(width)}${v}`).join("\n") + "\n";
}
