// What other folders may import from imagetools.
export * from "./manifest.ts";
export * from "./units.ts";
export * from "./cli_kit.ts";
export * from "./progress.ts";
export * from "./log.ts";
