// What a chunk server serves from: slices (the fake server), a disk that holds the image (a
// server), or a Receiver still filling its disk (a relay). Thin shells over imagetools' image
// I/O (openSlices, openImage).
import {
  chunkLength,
  chunkOffset,
  imageIdOf,
  type ImageSource,
  type Manifest,
  openImage,
  openSlices,
  parseManifest,
  type Slices,
  type StoredChunk,
} from "../../imagetools/mod.ts";
import { formatBytes } from "../../imagetools/kit/mod.ts";
import type { ChunkFeed } from "./live_chunks.ts";
import { ServePacker } from "./serve_pack.ts";

export { type ChunkFeed, ChunkFeedFailed } from "./live_chunks.ts";

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
  /**
   * A non-zero chunk as this source can send it (a framed request): zstd as stored in slices or
   * as a relay received it, else its bytes as they are. Waits like read().
   */
  readStored(index: number, opts?: ReadOptions): Promise<StoredChunk>;
  /** A relay (optional): as readStored, or, for a chunk it is receiving now, the feed of its
   * bytes as they arrive (sent on before the chunk is whole: live_chunks.ts). */
  readLive?(index: number, opts?: ReadOptions): Promise<StoredChunk | ChunkFeed>;
  /** A relay (optional): readLive's answer with a held chunk as its whole frame (head and
   * stored bytes in one buffer, roles/protocol's frameOf), built with one copy fewer. */
  readFrame?(index: number, opts?: ReadOptions): Promise<Uint8Array | ChunkFeed>;
  /** Release files held open (optional: sources without any omit it). */
  close?(): void;
  /** A rate-limited source: wait until `bytes` more may go out (a sub-chunk delta reads the
   * chunk with `paced: false` and sends only part of it). */
  pace?(bytes: number): Promise<void>;
}

export interface ReadOptions {
  waitMs?: number;
  signal?: AbortSignal;
  /** Count the chunk against a rate limit (default true). */
  paced?: boolean;
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
    return await this.readPlain(index, length);
  }

  /** Its bytes as they are (a disk holds nothing compressed); slices override this. */
  async readStored(index: number): Promise<StoredChunk> {
    return { zstd: false, bytes: await this.read(index) };
  }

  protected abstract readPlain(index: number, length: number): Promise<Uint8Array>;
}

class SlicesSource extends CompleteSource {
  constructor(private readonly slices: Slices) {
    super(slices.manifest, slices.manifestBytes);
  }

  protected readPlain(index: number): Promise<Uint8Array> {
    return this.slices.readChunk(index);
  }

  /** The chunk file's bytes as they are: a stored zstd chunk is sent without decompressing. */
  override readStored(index: number): Promise<StoredChunk> {
    checkChunkIndex(this.manifest, index);
    return this.slices.readStored(index);
  }
}

/**
 * Serve from a slices folder: DIR/manifest.json + DIR/chunks/<sha256>.chunk. Every stored
 * chunk file must be there with the right size (checked now, so a broken folder fails at start,
 * not halfway through a lab). Bytes are not hashed here: every client verifies what it gets.
 */
export async function openSlicesSource(dir: string): Promise<ChunkSource> {
  const slices = await openSlices(dir);
  const problems = await slices.checkFiles();
  if (problems.length > 0) {
    const more = problems.length > 3 ? ` and ${problems.length - 3} more` : "";
    throw new Error(`Cannot open slices "${dir}": ${problems.slice(0, 3).join("; ")}${more}`);
  }
  return new SlicesSource(slices);
}

/** Compressed bytes a server keeps of the chunks it compressed last (a room's PCs ask for the
 * same chunks about when the others do: each chunk is compressed about once, not once per PC). */
export const SERVE_CACHE_BYTES = 64 * 1024 * 1024;

class DiskSource extends CompleteSource {
  /** Recently compressed chunks, oldest first (a Map keeps insertion order). */
  readonly #packed = new Map<number, StoredChunk>();
  #packedBytes = 0;
  readonly #packer = new ServePacker();

  constructor(manifest: Manifest, manifestBytes: Uint8Array, private readonly disk: ImageSource) {
    super(manifest, manifestBytes);
  }

  /** A chunk the slices stored zstd is sent zstd here too (compressed as it is read, on a
   * worker: serve_pack.ts; before, a server sent a disk's chunks uncompressed: ~4 x the bytes
   * of the slices' on the three bench:bytes disks). A chunk stored raw, or a manifest of format
   * 1 or 2 (no compressed chunks, maybe older PCs), is sent as it is. */
  override async readStored(index: number): Promise<StoredChunk> {
    checkChunkIndex(this.manifest, index);
    const entry = this.manifest.chunks[index];
    if (entry.zero || entry.zstd === undefined) return await super.readStored(index);
    const hit = this.#packed.get(index);
    if (hit) {
      this.#packed.delete(index);
      this.#packed.set(index, hit);
      return hit;
    }
    const out = await this.#packer.fromDisk(
      this.manifest,
      index,
      (into) => this.readPlain(index, chunkLength(this.manifest, index), into),
    );
    // Only what was compressed (a chunk sent raw because the workers were busy is not kept).
    if (!out.zstd) return out;
    this.#packed.set(index, out);
    this.#packedBytes += out.bytes.length;
    for (const [i, c] of this.#packed) {
      if (this.#packedBytes <= SERVE_CACHE_BYTES) break;
      this.#packed.delete(i);
      this.#packedBytes -= c.bytes.length;
    }
    return out;
  }

  protected async readPlain(index: number, length: number, into?: Uint8Array) {
    const out = into?.length === length ? into : new Uint8Array(length);
    const n = await this.disk.readAt(chunkOffset(this.manifest, index), out);
    if (n !== length) {
      throw new Error(
        `Cannot read chunk ${index} of "${this.manifest.name}" from "${this.disk.path}": it ends after ${n} of ${length} bytes`,
      );
    }
    return out;
  }

  close(): void {
    this.#packer.close();
    this.disk.close();
  }
}

/** Serve from a disk (or image file) that holds the whole, verified image. */
export async function openDiskSource(
  path: string,
  manifestBytes: Uint8Array,
): Promise<ChunkSource> {
  const manifest = parseManifest(new TextDecoder().decode(manifestBytes));
  const disk = await openImage(path, "disk");
  if (disk.size < manifest.size) {
    disk.close();
    throw new Error(
      `Cannot serve from "${path}": it holds ${
        formatBytes(disk.size)
      } but the image "${manifest.name}" needs ${formatBytes(manifest.size)}`,
    );
  }
  return new DiskSource(manifest, manifestBytes, disk);
}
