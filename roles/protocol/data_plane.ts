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
// A client that sends "x-cascade-framed: 1" gets chunks (one, or a stream's) as frames: a 5-byte
// head (FRAME_ZSTD or FRAME_RAW, then the length, big-endian) and the chunk as the server holds
// it: zstd-compressed as stored in the slices (manifest format 3) or its bytes as they are. A
// server that frames says so with the same header in its answer; one that does not (an older
// one) sends the bytes as they are, and curl'ing /v1/image always gets them so.

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

/** Asks for (request) and announces (answer) framed chunks. */
export const FRAMED_HEADER = "x-cascade-framed";
export const FRAME_HEAD_BYTES = 5;
export const FRAME_RAW = 0;
export const FRAME_ZSTD = 1;

/** The head of one frame: how the chunk is encoded and how many bytes follow. */
export function frameHead(zstd: boolean, length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0 || length > 0xffffffff) {
    throw new RangeError(`Invalid frame length ${length}: must fit 32 bits`);
  }
  const head = new Uint8Array(FRAME_HEAD_BYTES);
  head[0] = zstd ? FRAME_ZSTD : FRAME_RAW;
  new DataView(head.buffer).setUint32(1, length);
  return head;
}

/** A whole frame: the head and `bytes` in one buffer (a reply's one write). */
export function frameOf(zstd: boolean, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEAD_BYTES + bytes.length);
  out.set(frameHead(zstd, bytes.length));
  out.set(bytes, FRAME_HEAD_BYTES);
  return out;
}

/** Read a frame head; a string saying what is wrong when it is not one. */
export function parseFrameHead(head: Uint8Array): { zstd: boolean; length: number } | string {
  if (head.length !== FRAME_HEAD_BYTES) return `a frame head of ${head.length} bytes`;
  if (head[0] !== FRAME_RAW && head[0] !== FRAME_ZSTD) return `unknown frame encoding ${head[0]}`;
  const length = new DataView(head.buffer, head.byteOffset, head.length).getUint32(1);
  return { zstd: head[0] === FRAME_ZSTD, length };
}

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
