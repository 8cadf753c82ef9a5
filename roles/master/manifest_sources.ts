// The manifest from peers: a PC asks the master only which peers hold the manifest (a few
// hundred bytes) and fetches its 817 KB (6 GB image) from one of them, so 682 PCs do not pull it
// all through the master's one port before the first chunk moves. Every peer's chunk server
// serves the manifest it holds at /v1/manifest; the PC checks its SHA-256 against the image id
// this answer names, so a peer that lies is caught and the next one (finally the master) asked.
//
// Route: GET /api/v1/manifest/sources[?image=…] → { id, sources: [data URL, …] }.
import type { PeerRecord } from "./peer_record.ts";

/** Sources named per answer: enough to get past a dead or lying peer or two. */
export const MANIFEST_SOURCES = 4;

/**
 * Up to `n` data URLs of connected peers (servers and PCs that said hello with a URL), starting
 * at `turn` in the list, so that successive askers are spread over all of them.
 */
export function manifestSources(
  peers: Iterable<PeerRecord>,
  turn: number,
  n = MANIFEST_SOURCES,
): string[] {
  const urls: string[] = [];
  for (const p of peers) if (p.connected && p.url !== undefined) urls.push(p.url);
  if (urls.length <= n) return urls;
  const start = turn % urls.length;
  return Array.from({ length: n }, (_, i) => urls[(start + i) % urls.length]);
}
