// The data plane's wire names: the chunk server's paths, its image header, and the URLs a
// client builds from a server's base URL. The chunk server (roles/data/chunk_server.ts) routes
// on these and the receiver asks for them, so the two can never drift apart.
//   GET /v1/manifest             the manifest's exact bytes
//   GET /v1/health               {"imageId","held","total"}
//   GET /v1/chunks/:index        one chunk
//   GET /v1/image                the whole image in order (`curl .../v1/image > disk`)
//   GET /v1/stream?from=A&to=B   the non-zero chunks A..B-1 back to back, in order
//   POST /v1/delta/:index        body: the client's digest of each 4 KiB block of its own
//                                version of the chunk; answer: a bitmap of the blocks that
//                                differ, then those blocks (roles/data/delta.ts)

/** Every data-plane answer names the image it serves (the manifest's SHA-256). */
export const IMAGE_HEADER = "x-cascade-image";

export const DATA_PATHS = {
  manifest: "/v1/manifest",
  health: "/v1/health",
  /** Hono route pattern; chunkUrl builds a concrete one. */
  chunk: "/v1/chunks/:index",
  image: "/v1/image",
  stream: "/v1/stream",
  /** Hono route pattern; deltaUrl builds a concrete one. */
  delta: "/v1/delta/:index",
} as const;

/** What GET /v1/health answers. */
export interface DataHealth {
  imageId: string;
  held: number;
  total: number;
}

/** A server's base URL without trailing slashes, so paths join with exactly one. */
export function dataBase(serverUrl: string): string {
  return serverUrl.replace(/\/+$/, "");
}

/** URL of one chunk: `<base>/v1/chunks/<index>`. */
export function chunkUrl(base: string, index: number): string {
  return `${dataBase(base)}/v1/chunks/${index}`;
}

/** URL of the sub-chunk delta of one chunk: `<base>/v1/delta/<index>`. */
export function deltaUrl(base: string, index: number): string {
  return `${dataBase(base)}/v1/delta/${index}`;
}

/** URL of the stream of chunks `from`..`to - 1` (`to` exclusive; zero chunks are skipped). */
export function streamUrl(base: string, from: number, to: number): string {
  return `${dataBase(base)}${DATA_PATHS.stream}?from=${from}&to=${to}`;
}

/** URL of the manifest a data server serves. */
export function dataManifestUrl(base: string): string {
  return `${dataBase(base)}${DATA_PATHS.manifest}`;
}

/** URL of the whole image in order. */
export function imageUrl(base: string): string {
  return `${dataBase(base)}${DATA_PATHS.image}`;
}

/** URL of the health answer. */
export function healthUrl(base: string): string {
  return `${dataBase(base)}${DATA_PATHS.health}`;
}
