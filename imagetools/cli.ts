// The imagetools commands: slice, verify, assemble, info. Thin shells over the modules that do
// the work; the dispatcher (cascade.ts) prints a thrown error as one line and sets the exit code.
import { assembleImage } from "./assemble.ts";
import { type CommandSpec, parseCommand, requirePositionals, UsageError } from "./kit/mod.ts";
import type { HashAlgo } from "./hashing/mod.ts";
import { loadManifest } from "./image_io.ts";
import { renderInfo } from "./info.ts";
import { MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from "./manifest.ts";
import { progressMode } from "./kit/mod.ts";
import { sliceImage } from "./slice.ts";
import { sliceSummary } from "./slice_summary.ts";
import { formatBytes, parseSize } from "./kit/mod.ts";
import { formatBadChunk, HASH_LABEL, verifyImage } from "./verify.ts";
import { DEFAULT_ZSTD_LEVEL, MAX_ZSTD_LEVEL, MIN_ZSTD_LEVEL } from "./zstd_chunks.ts";

const quietOption = {
  type: "boolean",
  short: "q",
  help: "No progress output",
  env: "CASCADE_QUIET",
} as const;

export const SLICE_SPEC: CommandSpec = {
  name: "slice",
  summary: "Slice a golden disk image or block device into MD5/SHA-256-manifested chunks",
  usage: "<image> [options]",
  options: {
    out: {
      type: "string",
      short: "o",
      arg: "DIR",
      help: 'Slices folder to write (default: "<image>.cascade" beside the image)',
    },
    "chunk-size": {
      type: "string",
      arg: "SIZE",
      help: "Bytes per chunk, e.g. 1M, 4MiB, 65536",
      default: "1MiB",
      env: "CASCADE_CHUNK_SIZE",
    },
    name: { type: "string", arg: "NAME", help: "Image name in the manifest (default: file name)" },
    force: { type: "boolean", short: "f", help: "Replace an existing slices folder" },
    raw: {
      type: "boolean",
      help: "Keep every byte: read no partition table or file system (free blocks kept)",
      env: "CASCADE_RAW",
    },
    "keep-pagefiles": {
      type: "boolean",
      help: "Keep the contents of Windows' pagefile.sys, swapfile.sys and hiberfil.sys",
      env: "CASCADE_KEEP_PAGEFILES",
    },
    uncompressed: {
      type: "boolean",
      help: "Store chunks as they are, not zstd-compressed (manifest format 1 or 2)",
      env: "CASCADE_UNCOMPRESSED",
    },
    "zstd-level": {
      type: "string",
      arg: "N",
      help: `zstd level of the stored chunks, ${MIN_ZSTD_LEVEL}..${MAX_ZSTD_LEVEL}`,
      default: String(DEFAULT_ZSTD_LEVEL),
      env: "CASCADE_ZSTD_LEVEL",
    },
    "image-md5": {
      type: "boolean",
      help: "Also record the whole image's MD5 (slower: one MD5 pass over every byte)",
      env: "CASCADE_IMAGE_MD5",
    },
    "no-image-sha256": {
      type: "boolean",
      help: "Leave out the whole image's SHA-256 (faster on a mostly free disk)",
      env: "CASCADE_NO_IMAGE_SHA256",
    },
    quiet: { ...quietOption, help: "No progress; print only the image id" },
  },
  notes: [
    "Reads the partition table (MBR, GPT) and the used-block maps of NTFS, ext2/3/4,",
    "FAT12/16/32, exFAT, XFS, Btrfs and Linux swap (its header page only), also inside LVM2's",
    "linear logical volumes: free blocks become zeros before hashing, so the manifest describes",
    "exactly that image. Anything else is kept byte for byte.",
    "The contents of pagefile.sys, swapfile.sys and hiberfil.sys in an NTFS root (memory of the",
    "last session) past their first MiB count as free too, unless --keep-pagefiles.",
    "Writes DIR/manifest.json and DIR/chunks/: each chunk zstd-compressed as <sha256>.zst, or",
    "as it is in <sha256>.chunk when zstd does not shrink it (or with --uncompressed); hashes",
    "are those of the uncompressed bytes. All-zero chunks are not stored, identical chunks are",
    "stored once. Prints the image id (SHA-256 of manifest.json) last.",
    "The manifest holds each chunk's SHA-256 and MD5 and the whole image's SHA-256; the whole",
    "image's MD5 only with --image-md5 (or --uncompressed): its one chain over every byte, the",
    "free space's zeros included, is the slowest part of slicing a mostly free disk.",
    "--no-image-sha256 leaves the whole image's SHA-256 out too (its chain is most of a slice",
    "of a mostly free disk); every chunk's hashes, and so the image id, still pin every byte.",
    "A file system whose metadata fails its own checksums or counts is kept whole; the summary",
    "and `info` say why. A disk mounted read-write (or an image file mounted through a loop",
    "device) is refused: it would change while it is read.",
    "A block device needs --out (nothing is written beside /dev/...).",
  ],
};

export const VERIFY_SPEC: CommandSpec = {
  name: "verify",
  summary: "Check an image or disk against a manifest, naming every bad chunk",
  usage: "<image-or-device> <manifest-or-slices-dir> [options]",
  options: {
    md5: { type: "boolean", help: "Check MD5 only" },
    sha256: { type: "boolean", help: "Check SHA-256 only" },
    quiet: quietOption,
  },
  notes: [
    "Checks both hashes unless told otherwise. Exit status 0 when every chunk matches, 1",
    "otherwise (each bad chunk is printed with its index, offset and both hashes). A device",
    "larger than the image is fine; a shorter one is an error.",
  ],
};

export const ASSEMBLE_SPEC: CommandSpec = {
  name: "assemble",
  summary: "Rebuild an image (or write a disk) from slices, verifying each chunk",
  usage: "<slices-dir> <out-image-or-device> [options]",
  options: {
    force: {
      type: "boolean",
      short: "f",
      help: "Overwrite an existing file, or write an existing block device",
    },
    quiet: quietOption,
  },
  notes: [
    "Every chunk's MD5 and SHA-256 is checked before it is written. A file is built under a",
    "temporary name and renamed when complete (zero chunks become holes); a block device is",
    "written in place, zeros included.",
  ],
};

export const INFO_SPEC: CommandSpec = {
  name: "info",
  summary: "Summarise a slices folder or manifest: size, chunks, image id",
  usage: "<slices-dir-or-manifest>",
  options: {},
};

function chunkSizeOption(text: string): number {
  let n: number;
  try {
    n = parseSize(text, "--chunk-size");
  } catch (cause) {
    throw new UsageError((cause as Error).message, { cause });
  }
  if (n < MIN_CHUNK_SIZE || n > MAX_CHUNK_SIZE) {
    throw new UsageError(
      `Invalid --chunk-size "${text}": must be ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE} bytes`,
    );
  }
  return n;
}

function zstdLevelOption(text: string): number {
  const n = /^\d{1,2}$/.test(text) ? Number(text) : NaN;
  if (!(n >= MIN_ZSTD_LEVEL && n <= MAX_ZSTD_LEVEL)) {
    throw new UsageError(
      `Invalid --zstd-level "${text}": must be a whole number ${MIN_ZSTD_LEVEL}..${MAX_ZSTD_LEVEL}`,
    );
  }
  return n;
}

function reportLeftovers(paths: string[]) {
  for (const path of paths) console.error(`Removed what an interrupted run left: "${path}"`);
}

export async function sliceMain(args: string[]): Promise<number> {
  const p = parseCommand(SLICE_SPEC, args);
  if (!p) return 0;
  const [image] = requirePositionals(SLICE_SPEC, p, ["<image>"]);
  const quiet = p.values.quiet === true;
  const r = await sliceImage({
    image,
    out: p.values.out as string | undefined,
    chunkSize: chunkSizeOption(p.values["chunk-size"] as string),
    name: p.values.name as string | undefined,
    force: p.values.force === true,
    raw: p.values.raw === true,
    keepPagefiles: p.values["keep-pagefiles"] === true,
    uncompressed: p.values.uncompressed === true,
    zstdLevel: zstdLevelOption(p.values["zstd-level"] as string),
    imageMd5: p.values["image-md5"] === true,
    imageSha256: p.values["no-image-sha256"] !== true,
    progress: progressMode(quiet),
  });
  if (!quiet) reportLeftovers(r.removedLeftovers);
  if (quiet) console.log(r.imageId);
  else console.log(`${sliceSummary(r)}\nImage id: ${r.imageId}`);
  return 0;
}

export async function verifyMain(args: string[]): Promise<number> {
  const p = parseCommand(VERIFY_SPEC, args);
  if (!p) return 0;
  const [image, manifest] = requirePositionals(VERIFY_SPEC, p, [
    "<image-or-device>",
    "<manifest-or-slices-dir>",
  ]);
  const algos: HashAlgo[] = [];
  if (p.values.md5 === true) algos.push("md5");
  if (p.values.sha256 === true) algos.push("sha256");
  if (algos.length === 0) algos.push("md5", "sha256");
  const r = await verifyImage({
    image,
    manifest,
    algos,
    progress: progressMode(p.values.quiet === true),
  });
  for (const b of r.bad) console.log(formatBadChunk(b));
  const against = r.manifestPath ?? manifest;
  const what = algos.map((a) => HASH_LABEL[a]).join(" and ");
  const badChunks = new Set(r.bad.map((b) => b.index)).size;
  if (badChunks > 0) {
    throw new Error(
      `Cannot verify "${image}" against "${against}": ${badChunks} of ${r.chunks} chunks do not match`,
    );
  }
  const freeChunks = r.manifest.chunks.filter((c) => c.free).length;
  const skipped = freeChunks > 0 ? `, ${freeChunks} free chunks skipped` : "";
  console.log(
    `OK: "${image}" matches "${against}" (${r.chunks} chunks, ${
      formatBytes(r.manifest.size)
    }, ${what} checked${skipped})`,
  );
  return 0;
}

export async function assembleMain(args: string[]): Promise<number> {
  const p = parseCommand(ASSEMBLE_SPEC, args);
  if (!p) return 0;
  const [slices, out] = requirePositionals(ASSEMBLE_SPEC, p, [
    "<slices-dir>",
    "<out-image-or-device>",
  ]);
  const r = await assembleImage({
    slices,
    out,
    force: p.values.force === true,
    progress: progressMode(p.values.quiet === true),
  });
  if (p.values.quiet !== true) reportLeftovers(r.removedLeftovers);
  console.log(
    `Assembled "${r.manifest.name}" (${
      formatBytes(r.manifest.size)
    }, ${r.chunks} chunks, ${r.zeroChunks} zero) into "${r.out}"; every chunk verified. Image id: ${r.imageId}`,
  );
  return 0;
}

export async function infoMain(args: string[]): Promise<number> {
  const p = parseCommand(INFO_SPEC, args);
  if (!p) return 0;
  const [path] = requirePositionals(INFO_SPEC, p, ["<slices-dir-or-manifest>"]);
  const loaded = await loadManifest(path);
  console.log(renderInfo(loaded.manifest, loaded.imageId).trimEnd());
  return 0;
}
