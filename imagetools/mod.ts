// What other folders may import from imagetools: the image (manifest, slice, verify, assemble,
// info, image I/O). The kit (log, CLI, units, progress) and hashing are rooms of their own.
export * from "./assemble.ts";
export * from "./cli.ts";
export * from "./direct_write.ts";
export * from "./image_io.ts";
export * from "./manifest.ts";
export * from "./mounted.ts";
export * from "./slice.ts";
export * from "./slice_summary.ts";
export * from "./verify.ts";
export * from "./zstd_chunks.ts";
