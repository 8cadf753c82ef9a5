// The manifest: what an image is made of, chunk by chunk. Pure: no I/O, no clock.
// Its serialized bytes are canonical, so their SHA-256 (the image id) is stable.
import { createHash } from "node:crypto";
import { zeroChunkHashes } from "./hashing/mod.ts";

export { zeroChunkHashes };

export const MANIFEST_FORMAT = 1;
/** Chunks larger than this are refused: a chunk is held in memory whole. */
export const MAX_CHUNK_SIZE = 256 * 1024 * 1024;
/** Smallest chunk worth having: below it the per-chunk overhead dominates. */
export const MIN_CHUNK_SIZE = 4096;
/** 16 TiB: larger images are refused as absurd rather than half-handled. */
export const MAX_IMAGE_SIZE = 16 * 1024 ** 4;
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;

export interface ChunkEntry {
  md5: string;
  sha256: string;
  /** All zero bytes: never stored, never transferred, written as zeros. */
  zero: boolean;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  name: string;
  size: number;
  chunkSize: number;
  md5: string;
  sha256: string;
  chunks: ChunkEntry[];
}

const MD5_HEX = /^[0-9a-f]{32}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

export function chunkOffset(m: Pick<Manifest, "chunkSize">, index: number): number {
  return index * m.chunkSize;
}

export function chunkLength(m: Pick<Manifest, "size" | "chunkSize">, index: number): number {
  return Math.min(m.chunkSize, m.size - index * m.chunkSize);
}

function field(where: string, name: string, value: unknown): string {
  return `${where} field "${name}" (${JSON.stringify(value) ?? String(value)})`;
}

function requireInteger(obj: Record<string, unknown>, name: string, min: number, max: number) {
  const v = obj[name];
  if (v === undefined) throw new SyntaxError(`Invalid manifest: missing field "${name}"`);
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    throw new TypeError(`Invalid manifest: ${field("", name, v).trim()} is not a whole number`);
  }
  if (v < min || v > max) {
    throw new RangeError(
      `Invalid manifest: field "${name}" (${v}) is out of range ${min}..${max}`,
    );
  }
  return v;
}

function requireHex(obj: Record<string, unknown>, name: string, re: RegExp, where: string) {
  const v = obj[name];
  if (v === undefined) {
    throw new SyntaxError(
      `Invalid manifest: missing field "${name}"${where ? ` in ${where}` : ""}`,
    );
  }
  if (typeof v !== "string" || !re.test(v)) {
    throw new SyntaxError(
      `Invalid manifest: ${field(where, name, v).trim()} is not ${
        re === MD5_HEX ? "32" : "64"
      } lower-case hex digits`,
    );
  }
  return v;
}

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 32) return true;
  return false;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Validate an already-decoded value as a manifest; throws one clear error naming the field. */
export function validateManifest(value: unknown): Manifest {
  if (!isRecord(value)) throw new TypeError("Invalid manifest: the top level is not a JSON object");
  const known = new Set(["format", "name", "size", "chunkSize", "md5", "sha256", "chunks"]);
  for (const key of Object.keys(value)) {
    if (!known.has(key)) throw new SyntaxError(`Invalid manifest: unknown field "${key}"`);
  }
  if (value.format === undefined) throw new SyntaxError('Invalid manifest: missing field "format"');
  if (value.format !== MANIFEST_FORMAT) {
    throw new RangeError(
      `Invalid manifest: unsupported format version ${
        JSON.stringify(value.format)
      } (this Cascade reads format ${MANIFEST_FORMAT})`,
    );
  }
  const name = value.name;
  if (
    typeof name !== "string" || name.length === 0 || name.length > 255 || hasControlChar(name)
  ) {
    throw new SyntaxError(
      `Invalid manifest: field "name" (${
        JSON.stringify(name) ?? "missing"
      }) must be 1..255 printable characters`,
    );
  }
  const size = requireInteger(value, "size", 1, MAX_IMAGE_SIZE);
  const chunkSize = requireInteger(value, "chunkSize", MIN_CHUNK_SIZE, MAX_CHUNK_SIZE);
  const md5 = requireHex(value, "md5", MD5_HEX, "");
  const sha256 = requireHex(value, "sha256", SHA256_HEX, "");
  if (!Array.isArray(value.chunks)) {
    throw new TypeError(
      `Invalid manifest: field "chunks" (${
        value.chunks === undefined ? "missing" : typeof value.chunks
      }) is not an array`,
    );
  }
  const expected = chunkCount(size, chunkSize);
  if (value.chunks.length !== expected) {
    throw new RangeError(
      `Invalid manifest: field "chunks" has ${value.chunks.length} entries, but size ${size} and chunkSize ${chunkSize} need ${expected}`,
    );
  }
  const chunks: ChunkEntry[] = value.chunks.map((c: unknown, i: number) => {
    const where = `chunk ${i}`;
    if (!isRecord(c)) throw new TypeError(`Invalid manifest: ${where} is not a JSON object`);
    for (const key of Object.keys(c)) {
      if (key !== "md5" && key !== "sha256" && key !== "zero") {
        throw new SyntaxError(`Invalid manifest: unknown field "${key}" in ${where}`);
      }
    }
    const entry = {
      md5: requireHex(c, "md5", MD5_HEX, where),
      sha256: requireHex(c, "sha256", SHA256_HEX, where),
      zero: c.zero,
    };
    if (typeof entry.zero !== "boolean") {
      throw new TypeError(
        `Invalid manifest: field "zero" in ${where} (${
          JSON.stringify(c.zero) ?? "missing"
        }) is not true or false`,
      );
    }
    if (entry.zero) {
      const z = zeroChunkHashes(chunkLength({ size, chunkSize }, i));
      if (z.md5 !== entry.md5 || z.sha256 !== entry.sha256) {
        throw new SyntaxError(
          `Invalid manifest: ${where} is marked zero but its hashes are not those of zero bytes`,
        );
      }
    }
    return entry as ChunkEntry;
  });
  return { format: MANIFEST_FORMAT, name, size, chunkSize, md5, sha256, chunks };
}

/** Parse manifest text (JSON) strictly. */
export function parseManifest(text: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new SyntaxError(`Invalid manifest: not JSON (${(cause as Error).message})`, { cause });
  }
  return validateManifest(value);
}

/** Canonical text: fixed key order, one chunk per line, trailing newline. */
export function serializeManifest(m: Manifest): string {
  const head = JSON.stringify({
    format: m.format,
    name: m.name,
    size: m.size,
    chunkSize: m.chunkSize,
    md5: m.md5,
    sha256: m.sha256,
  });
  const lines = m.chunks.map((c) => JSON.stringify({ md5: c.md5, sha256: c.sha256, zero: c.zero }));
  return `${head.slice(0, -1)},"chunks":[\n${lines.join(",\n")}\n]}\n`;
}

/** The image id: SHA-256 (hex) of the manifest file's exact bytes. */
export function imageIdOf(manifestBytes: Uint8Array | string): string {
  return createHash("sha256").update(manifestBytes).digest("hex");
}

/** A short form of an image id for logs and tables. */
export function shortId(id: string): string {
  return id.slice(0, 12);
}

export function isImageId(s: string): boolean {
  return SHA256_HEX.test(s);
}

/** File name of a stored chunk inside the slices' chunks/ folder: derived from the hash only. */
export function chunkFileName(entry: Pick<ChunkEntry, "sha256">): string {
  if (!SHA256_HEX.test(entry.sha256)) {
    throw new SyntaxError(`Invalid chunk hash "${entry.sha256}"`);
  }
  return `${entry.sha256}.chunk`;
}
