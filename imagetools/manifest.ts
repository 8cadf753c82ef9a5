// The manifest: what an image is made of, chunk by chunk. Pure: no I/O, no clock.
// Its serialized bytes are canonical, so their SHA-256 (the image id) is stable.
import { createHash } from "node:crypto";
import { zeroChunkHashes } from "./hashing/mod.ts";

export { zeroChunkHashes };

/** The plain format: what a manifest is written in when it needs nothing of a newer one. */
export const MANIFEST_FORMAT = 1;
/** Format 2 adds the disk's layout (partitions, file systems, free bytes) and chunks marked
 * free (wholly in blocks a file system does not use). Format 1 is still read. */
export const MANIFEST_FORMAT_V2 = 2;
/** Format 3 is format 2 with chunks stored (and sent) zstd-compressed: each non-zero chunk says
 * how it is stored, its compressed length or raw. Hashes stay those of the uncompressed bytes. */
export const MANIFEST_FORMAT_V3 = 3;
export type ManifestFormat =
  | typeof MANIFEST_FORMAT
  | typeof MANIFEST_FORMAT_V2
  | typeof MANIFEST_FORMAT_V3;
const FORMATS: readonly number[] = [MANIFEST_FORMAT, MANIFEST_FORMAT_V2, MANIFEST_FORMAT_V3];
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
  /** (format 2) Zero, and wholly in blocks the file systems leave free: need not be written
   * (nor read back) at all. Only ever true with `zero`. */
  free?: boolean;
  /** (format 3) Stored and sent zstd-compressed: the compressed length in bytes (less than the
   * chunk's own length). */
  zstd?: number;
  /** (format 3) Stored and sent as it is: zstd did not make it smaller. */
  raw?: boolean;
}

/** (format 2) One partition (or the whole disk: number 0) and what slicing found in it. */
export interface ManifestVolume {
  number: number;
  start: number;
  size: number;
  type?: string;
  typeName?: string;
  name?: string;
  /** The file system understood, or null: then every byte was kept. */
  fs: string | null;
  /** Why a recognised file system was kept whole. */
  note?: string;
  /** Bytes of free blocks, zeros in the image. */
  free: number;
  /** Files whose contents past their first MiB count as free (Windows' pagefile.sys,
   * swapfile.sys, hiberfil.sys), as "name size" text. */
  dropped?: string;
}

export interface ManifestLayout {
  scheme: "mbr" | "gpt" | "none";
  volumes: ManifestVolume[];
}

export interface Manifest {
  format: ManifestFormat;
  name: string;
  size: number;
  chunkSize: number;
  /** The whole image's MD5: always in formats 1 and 2; in format 3 only when slicing was asked
   * for it (`--image-md5`: one MD5 chain over every byte, zeros included, is the slowest part
   * of slicing a mostly free disk, and nothing on the data path needs it). */
  md5?: string;
  /** The whole image's SHA-256: in format 3 absent only when slicing was told to leave it out
   * (`--no-image-sha256`: on a mostly free disk its one chain is most of the slice). */
  sha256?: string;
  chunks: ChunkEntry[];
  /** (format 2) The disk's partitions and file systems, as slicing found them. */
  layout?: ManifestLayout;
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
  if (value.format === undefined) throw new SyntaxError('Invalid manifest: missing field "format"');
  if (!FORMATS.includes(value.format as number)) {
    throw new RangeError(
      `Invalid manifest: unsupported format version ${
        JSON.stringify(value.format)
      } (this Cascade reads formats ${FORMATS.join(", ")})`,
    );
  }
  const format = value.format as ManifestFormat;
  const v2 = format >= MANIFEST_FORMAT_V2;
  const v3 = format === MANIFEST_FORMAT_V3;
  const known = new Set(["format", "name", "size", "chunkSize", "md5", "sha256", "chunks"]);
  if (v2) known.add("layout");
  for (const key of Object.keys(value)) {
    if (!known.has(key)) throw new SyntaxError(`Invalid manifest: unknown field "${key}"`);
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
  // The whole image's hashes: format 3 may leave either out (slice --image-md5, --no-image-sha256).
  const whole = (key: string, hex: RegExp) =>
    v3 && value[key] === undefined ? undefined : requireHex(value, key, hex, "");
  const md5 = whole("md5", MD5_HEX);
  const sha256 = whole("sha256", SHA256_HEX);
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
      const known = key === "md5" || key === "sha256" || key === "zero" ||
        (v2 && key === "free") || (v3 && (key === "zstd" || key === "raw"));
      if (!known) {
        throw new SyntaxError(`Invalid manifest: unknown field "${key}" in ${where}`);
      }
    }
    const entry: ChunkEntry = {
      md5: requireHex(c, "md5", MD5_HEX, where),
      sha256: requireHex(c, "sha256", SHA256_HEX, where),
      zero: c.zero as boolean,
    };
    if (c.free !== undefined) {
      if (c.free !== true || c.zero !== true) {
        throw new SyntaxError(
          `Invalid manifest: field "free" in ${where} (${
            JSON.stringify(c.free)
          }) must be true, and only on a zero chunk`,
        );
      }
      entry.free = true;
    }
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
    if (v3) storedForm(entry, c, chunkLength({ size, chunkSize }, i), where);
    return entry;
  });
  if (v3) sameStoredForms(chunks);
  const manifest: Manifest = { format, name, size, chunkSize, md5, sha256, chunks };
  if (md5 === undefined) delete manifest.md5;
  if (sha256 === undefined) delete manifest.sha256;
  if (v2 && value.layout !== undefined) manifest.layout = validateLayout(value.layout, size);
  return manifest;
}

/** (format 3) A non-zero chunk is stored either zstd (its compressed length, shorter than the
 * chunk) or raw; a zero chunk is not stored at all. */
function storedForm(entry: ChunkEntry, c: Record<string, unknown>, length: number, where: string) {
  if (entry.zero) {
    if (c.zstd !== undefined || c.raw !== undefined) {
      throw new SyntaxError(
        `Invalid manifest: ${where} is a zero chunk (never stored) but has "zstd" or "raw"`,
      );
    }
    return;
  }
  if (c.raw !== undefined) {
    if (c.raw !== true || c.zstd !== undefined) {
      throw new SyntaxError(
        `Invalid manifest: ${field(where, "raw", c.raw)} must be true, and without "zstd"`,
      );
    }
    entry.raw = true;
    return;
  }
  if (c.zstd === undefined) {
    throw new SyntaxError(`Invalid manifest: ${where} has neither "zstd" nor "raw"`);
  }
  const n = c.zstd;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1 || n >= length) {
    throw new RangeError(
      `Invalid manifest: ${field(where, "zstd", n)} is not a compressed length of 1..${
        length - 1
      } bytes`,
    );
  }
  entry.zstd = n;
}

/** Chunks with one hash share one stored file, so they must say the same about it. */
function sameStoredForms(chunks: ChunkEntry[]) {
  const seen = new Map<string, number>();
  chunks.forEach((c, i) => {
    if (c.zero) return;
    const first = seen.get(c.sha256);
    if (first === undefined) seen.set(c.sha256, i);
    else if (chunks[first].zstd !== c.zstd) {
      throw new SyntaxError(
        `Invalid manifest: chunks ${first} and ${i} have the same SHA-256 but are stored differently`,
      );
    }
  });
}

const SCHEMES = new Set(["mbr", "gpt", "none"]);
const PRINTABLE = /^[\x20-\x7e\u00a0-\uffff]{0,200}$/;

function validateLayout(value: unknown, size: number): ManifestLayout {
  if (!isRecord(value)) throw new TypeError('Invalid manifest: field "layout" is not an object');
  for (const key of Object.keys(value)) {
    if (key !== "scheme" && key !== "volumes") {
      throw new SyntaxError(`Invalid manifest: unknown field "${key}" in layout`);
    }
  }
  if (typeof value.scheme !== "string" || !SCHEMES.has(value.scheme)) {
    throw new SyntaxError(
      `Invalid manifest: ${field("layout", "scheme", value.scheme)} is not mbr, gpt or none`,
    );
  }
  if (!Array.isArray(value.volumes) || value.volumes.length > 1024) {
    throw new TypeError('Invalid manifest: field "volumes" in layout is not an array (<= 1024)');
  }
  const volumes = value.volumes.map((v: unknown, i: number): ManifestVolume => {
    const where = `volume ${i}`;
    if (!isRecord(v)) throw new TypeError(`Invalid manifest: ${where} is not a JSON object`);
    const known = [
      "number",
      "start",
      "size",
      "type",
      "typeName",
      "name",
      "fs",
      "note",
      "free",
      "dropped",
    ];
    for (const key of Object.keys(v)) {
      if (!known.includes(key)) {
        throw new SyntaxError(`Invalid manifest: unknown field "${key}" in ${where}`);
      }
    }
    const out: ManifestVolume = {
      number: requireInteger(v, "number", 0, 4096),
      start: requireInteger(v, "start", 0, size),
      size: requireInteger(v, "size", 0, size),
      fs: null,
      free: requireInteger(v, "free", 0, size),
    };
    for (const key of ["type", "typeName", "name", "note", "dropped"] as const) {
      if (v[key] === undefined) continue;
      const text = v[key];
      if (typeof text !== "string" || !PRINTABLE.test(text)) {
        throw new SyntaxError(
          `Invalid manifest: ${field(where, key, text)} is not printable text (<= 200)`,
        );
      }
      out[key] = text;
    }
    if (v.fs !== null && (typeof v.fs !== "string" || !/^[a-z0-9]{1,16}$/.test(v.fs))) {
      throw new SyntaxError(`Invalid manifest: ${field(where, "fs", v.fs)} is not a name or null`);
    }
    out.fs = v.fs;
    if (out.start + out.size > size || out.free > out.size) {
      throw new RangeError(`Invalid manifest: ${where} does not fit the image`);
    }
    return out;
  });
  return { scheme: value.scheme as ManifestLayout["scheme"], volumes };
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
  const v2 = m.format >= MANIFEST_FORMAT_V2;
  const v3 = m.format === MANIFEST_FORMAT_V3;
  const head = JSON.stringify({
    format: m.format,
    name: m.name,
    size: m.size,
    chunkSize: m.chunkSize,
    md5: m.md5, // JSON leaves out what is undefined
    sha256: m.sha256,
    ...(v2 && m.layout ? { layout: canonicalLayout(m.layout) } : {}),
  });
  const lines = m.chunks.map((c) =>
    JSON.stringify({
      md5: c.md5,
      sha256: c.sha256,
      zero: c.zero,
      ...(v2 && c.free ? { free: true } : {}),
      ...(v3 && c.zstd !== undefined ? { zstd: c.zstd } : {}),
      ...(v3 && c.raw ? { raw: true } : {}),
    })
  );
  return `${head.slice(0, -1)},"chunks":[\n${lines.join(",\n")}\n]}\n`;
}

function canonicalLayout(l: ManifestLayout): ManifestLayout {
  return {
    scheme: l.scheme,
    volumes: l.volumes.map((v) => ({
      number: v.number,
      start: v.start,
      size: v.size,
      ...(v.type !== undefined ? { type: v.type } : {}),
      ...(v.typeName !== undefined ? { typeName: v.typeName } : {}),
      ...(v.name !== undefined ? { name: v.name } : {}),
      fs: v.fs,
      ...(v.note !== undefined ? { note: v.note } : {}),
      free: v.free,
      ...(v.dropped !== undefined ? { dropped: v.dropped } : {}),
    })),
  };
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

/** File name of a chunk stored zstd-compressed (format 3): `<sha256>.zst`. */
export function storedFileName(entry: Pick<ChunkEntry, "sha256" | "zstd">): string {
  const plain = chunkFileName(entry);
  return entry.zstd === undefined ? plain : `${entry.sha256}.zst`;
}

/** Bytes a chunk takes stored and on the wire: its compressed length, else its length. */
export function storedLength(m: Manifest, index: number): number {
  return m.chunks[index].zstd ?? chunkLength(m, index);
}
