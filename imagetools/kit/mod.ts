// What other folders may import from imagetools/kit.
export * from "./cli_kit.ts";
export * from "./log.ts";
export * from "./log_sink.ts";
export * from "./progress.ts";
export * from "./units.ts";
export * from "./worker_rpc.ts";
export * from "./aligned_memory.ts";
