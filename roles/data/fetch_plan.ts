// What a fetch asks for, planned without I/O: the runs of missing chunks streamed one response
// each, sub-chunk deltas for chunks whose older version the target holds, per-chunk requests
// when streaming cannot be used, and how many chunk buffers the transfer may hold.
import type { Manifest } from "../../imagetools/mod.ts";

/** Split the missing chunks (ascending) into runs with only zero chunks between members: one
 * /v1/stream request each (the server skips zero chunks in a range). */
export function planRuns(manifest: Manifest, missing: readonly number[]): number[][] {
  const chunks = manifest.chunks;
  const runs: number[][] = [];
  let prev = -1;
  for (const i of missing) {
    let joins = prev >= 0;
    for (let k = prev + 1; joins && k < i; k++) if (!chunks[k].zero) joins = false;
    if (joins) runs.at(-1)!.push(i);
    else runs.push([i]);
    prev = i;
  }
  return runs;
}

/** Memory the chunk buffers of one fetch may take at most (unless `inflight + 1` needs more). */
export const BUFFER_BUDGET = 512 << 20;

/** Chunk buffers for a fetch: one per request in flight plus one being verified, up to twice
 * the requests in flight while they fit the budget (so hashing never starves the network). */
export function bufferSlots(inflight: number, chunkSize: number): number {
  return Math.max(inflight + 1, Math.min(inflight * 2, Math.floor(BUFFER_BUDGET / chunkSize)));
}

/** One request's worth of work: a stream of a run, one chunk, or one chunk's sub-chunk delta. */
export type WorkItem =
  | { kind: "run"; chunks: number[] }
  | { kind: "chunk"; index: number }
  | { kind: "delta"; index: number };

/** The requests for `ready` (missing chunks no request has, ascending): a chunk whose older
 * version is on the target as a delta (while the server answers them), the rest as streams of
 * runs, or one request per chunk once streams failed with this server. */
export function planWork(
  manifest: Manifest,
  ready: readonly number[],
  o: { older: (index: number) => boolean; delta: boolean; streams: boolean },
): WorkItem[] {
  const items: WorkItem[] = [];
  const whole: number[] = [];
  for (const i of ready) {
    if (o.delta && o.older(i)) items.push({ kind: "delta", index: i });
    else whole.push(i);
  }
  if (!o.streams) return [...items, ...whole.map((index) => ({ kind: "chunk" as const, index }))];
  return [
    ...items,
    ...planRuns(manifest, whole).map((chunks) => ({ kind: "run" as const, chunks })),
  ];
}

/** The chunks a work item asks for. */
export function chunksOf(item: WorkItem): number[] {
  return item.kind === "run" ? item.chunks : [item.index];
}
