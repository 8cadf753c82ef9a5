// What a chunk server serves from: slices (the fake server), a disk that holds the image (a
// server), or a Receiver still filling its disk (a relay). Thin I/O shells over the manifest.
import * as fs from "node:fs";
import { join } from "node:path";
import {
  chunkFileName,
  chunkLength,
  chunkOffset,
  imageIdOf,
  type Manifest,
  parseManifest,
} from "../../imagetools/mod.ts";
import { formatBytes } from "../../imagetools/kit/mod.ts";

export interface ChunkSource {
  readonly manifest: Manifest;
  /** The manifest file's exact bytes (their SHA-256 is the image id). */
  readonly manifestBytes: Uint8Array;
  readonly imageId: string;
  /** Chunk `index` can be read now (zero chunks always can: they read as zeros). */
  has(index: number): boolean;
  /** Verified chunks held, zero chunks included. */
  heldCount(): number;
  /**
   * Read chunk `index`. If not held yet (a relay still receiving), wait up to opts.waitMs
   * (default 30000) for it, then throw ChunkUnavailableError. Zero chunks read as zeros.
   */
  read(index: number, opts?: ReadOptions): Promise<Uint8Array>;
  /** Release files held open (optional: sources without any omit it). */
  close?(): void;
}

export interface ReadOptions {
  waitMs?: number;
  signal?: AbortSignal;
}

export const DEFAULT_WAIT_MS = 30_000;

/** The chunk is not held and did not arrive in time (a server answers 503). */
export class ChunkUnavailableError extends Error {
  override name = "ChunkUnavailableError";
}

/** Throws a RangeError naming the index unless it is a chunk of `m`. */
export function checkChunkIndex(m: Manifest, index: number): void {
  const n = m.chunks.length;
  if (!Number.isSafeInteger(index) || index < 0 || index >= n) {
    throw new RangeError(
      `Invalid chunk index ${index} for "${m.name}": it has chunks 0..${n - 1}`,
    );
  }
}

/** Read exactly `into.length` bytes at `position` (pread: safe with concurrent callers). */
export async function readFullyAt(
  fd: number,
  into: Uint8Array,
  position: number,
): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const n = await new Promise<number>((resolve, reject) =>
      fs.read(
        fd,
        into,
        done,
        into.length - done,
        position + done,
        (err, bytes) => err ? reject(err) : resolve(bytes),
      )
    );
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** Size of a regular file or a block device (stat says 0 for a device: seek to its end). */
export async function sizeOf(path: string): Promise<{ size: number; isBlockDevice: boolean }> {
  const st = await Deno.stat(path);
  if (st.isBlockDevice) {
    using f = await Deno.open(path, { read: true });
    return { size: await f.seek(0, Deno.SeekMode.End), isBlockDevice: true };
  }
  return { size: st.size, isBlockDevice: false };
}

/** A source holding every chunk from the start (slices, an imaged disk): never waits. */
abstract class CompleteSource implements ChunkSource {
  readonly imageId: string;
  constructor(readonly manifest: Manifest, readonly manifestBytes: Uint8Array) {
    this.imageId = imageIdOf(manifestBytes);
  }

  has(index: number): boolean {
    return Number.isSafeInteger(index) && index >= 0 && index < this.manifest.chunks.length;
  }

  heldCount(): number {
    return this.manifest.chunks.length;
  }

  async read(index: number): Promise<Uint8Array> {
    checkChunkIndex(this.manifest, index);
    const length = chunkLength(this.manifest, index);
    // Zero chunks are neither stored in slices nor worth reading from a verified disk.
    if (this.manifest.chunks[index].zero) return new Uint8Array(length);
    return await this.readStored(index, length);
  }

  protected abstract readStored(index: number, length: number): Promise<Uint8Array>;
}

class SlicesSource extends CompleteSource {
  constructor(manifest: Manifest, manifestBytes: Uint8Array, private readonly chunksDir: string) {
    super(manifest, manifestBytes);
  }

  protected async readStored(index: number, length: number): Promise<Uint8Array> {
    const entry = this.manifest.chunks[index];
    const file = join(this.chunksDir, chunkFileName(entry));
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(file);
    } catch (cause) {
      throw new Error(`Cannot read chunk ${index} of "${this.manifest.name}" from "${file}"`, {
        cause,
      });
    }
    if (bytes.length !== length) {
      throw new Error(
        `Cannot read chunk ${index} of "${this.manifest.name}": "${file}" holds ${bytes.length} bytes, expected ${length}`,
      );
    }
    return bytes;
  }
}

/**
 * Serve from a slices folder: DIR/manifest.json + DIR/chunks/<sha256>.chunk. Every stored
 * chunk file must be there with the right size (checked now, so a broken folder fails at start,
 * not halfway through a lab). Bytes are not hashed here: every client verifies what it gets.
 */
export async function openSlicesSource(dir: string): Promise<ChunkSource> {
  const manifestPath = join(dir, "manifest.json");
  let manifestBytes: Uint8Array;
  try {
    manifestBytes = await Deno.readFile(manifestPath);
  } catch (cause) {
    throw new Error(`Cannot open slices "${dir}": cannot read "${manifestPath}"`, { cause });
  }
  let manifest: Manifest;
  try {
    manifest = parseManifest(new TextDecoder().decode(manifestBytes));
  } catch (cause) {
    throw new Error(`Cannot open slices "${dir}": ${(cause as Error).message}`, { cause });
  }
  const chunksDir = join(dir, "chunks");
  const problems: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < manifest.chunks.length; i++) {
    const entry = manifest.chunks[i];
    if (entry.zero || seen.has(entry.sha256)) continue;
    seen.add(entry.sha256);
    const file = join("chunks", chunkFileName(entry));
    const want = chunkLength(manifest, i);
    try {
      const st = await Deno.stat(join(dir, file));
      if (st.size !== want) {
        problems.push(`${file} (chunk ${i}) holds ${st.size} bytes, not ${want}`);
      }
    } catch {
      problems.push(`${file} (chunk ${i}) is missing`);
    }
  }
  if (problems.length > 0) {
    const more = problems.length > 3 ? ` and ${problems.length - 3} more` : "";
    throw new Error(`Cannot open slices "${dir}": ${problems.slice(0, 3).join("; ")}${more}`);
  }
  return new SlicesSource(manifest, manifestBytes, chunksDir);
}

class DiskSource extends CompleteSource {
  constructor(
    manifest: Manifest,
    manifestBytes: Uint8Array,
    private readonly fd: number,
    private readonly path: string,
  ) {
    super(manifest, manifestBytes);
  }

  protected async readStored(index: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let n: number;
    try {
      n = await readFullyAt(this.fd, out, chunkOffset(this.manifest, index));
    } catch (cause) {
      throw new Error(`Cannot read chunk ${index} of "${this.manifest.name}" from "${this.path}"`, {
        cause,
      });
    }
    if (n !== length) {
      throw new Error(
        `Cannot read chunk ${index} of "${this.manifest.name}" from "${this.path}": it ends after ${n} of ${length} bytes`,
      );
    }
    return out;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Serve from a disk (or image file) that holds the whole, verified image. */
export async function openDiskSource(
  path: string,
  manifestBytes: Uint8Array,
): Promise<ChunkSource> {
  const manifest = parseManifest(new TextDecoder().decode(manifestBytes));
  let size: number;
  try {
    size = (await sizeOf(path)).size;
  } catch (cause) {
    throw new Error(`Cannot serve from "${path}": ${(cause as Error).message}`, { cause });
  }
  if (size < manifest.size) {
    throw new Error(
      `Cannot serve from "${path}": it holds ${
        formatBytes(size)
      } but the image "${manifest.name}" needs ${formatBytes(manifest.size)}`,
    );
  }
  const fd = fs.openSync(path, "r");
  return new DiskSource(manifest, manifestBytes, fd, path);
}
