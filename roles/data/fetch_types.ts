// What the receiver's HTTP client (chunk_fetch.ts) is given and hands back: the fetch it
// uses, its options, a chunk received, and the error of a request cut short.
import type { Manifest } from "../../imagetools/mod.ts";

/** The part of `fetch` the receiver uses. */
export type FetchLike = (
  url: string,
  init: {
    signal: AbortSignal;
    headers: Record<string, string>;
    method?: "GET" | "POST";
    body?: Uint8Array<ArrayBuffer>;
  },
) => Promise<Response>;

/** A request cut short because the fetch as a whole already failed (not an error of its own). */
export class FetchCancelled extends Error {
  override name = "FetchCancelled";
}

/** A whole chunk in its buffer (maybe a new handle to the pooled memory) and its SHA-256. */
export interface Received {
  buffer: ArrayBuffer;
  sha256: string;
  /** It came zstd-compressed: those bytes as received (a relay sends them on once verified). */
  stored?: Uint8Array;
  /** A delta: the blocks patched into this PC's own version (delta.ts); only they differ from
   * what the target holds, so only they need writing. */
  patched?: readonly number[];
  /** Why what came is not this chunk before any hash (bad zstd): the buffer holds nothing. */
  bad?: string;
}

export interface ChunkFetchOptions {
  manifest: Manifest;
  /** The image this client accepts: a server naming another one is refused. */
  imageId: string;
  /** The chunk server's base URL. */
  base: string;
  /** The master's ticket for this server, sent as "Authorization: Bearer <ticket>". */
  ticket?: string;
  fetch?: FetchLike;
  /** The fetch as a whole failed: a request that breaks now is FetchCancelled, not an error. */
  cancelled: () => boolean;
  /** `n` bytes of chunk `index` arrived. */
  onBytes?: (index: number, n: number) => void;
  /** A request ended in which some bytes of chunk `index` arrived (a later one refetches). */
  onTouched?: (index: number) => void;
  /** Chunk `index` begins to arrive, as a frame of `length` bytes (zstd or raw): a relay sends
   * its bytes on as they come (live_chunks.ts). */
  onFrame?: (index: number, zstd: boolean, length: number) => void;
  /** More bytes of the frame begun (a view of the reused buffer: copy it now). */
  onPiece?: (index: number, bytes: Uint8Array) => void;
  /** The request broke off inside chunk `index`'s frame (`why`): it is not handed on. */
  onCut?: (index: number, why: string) => void;
}
