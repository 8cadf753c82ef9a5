// What other folders may import from roles/data.
export * from "./chunk_server.ts";
export * from "./chunk_source.ts";
export * from "./rate_limit.ts";
export * from "./receiver.ts";
export * from "./target_disk.ts";
