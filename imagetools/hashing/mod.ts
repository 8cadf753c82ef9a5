// What other folders may import from imagetools/hashing.
export * from "./batch_hasher.ts";
export * from "./chunk_hash.ts";
export * from "./md5_worker.ts";
