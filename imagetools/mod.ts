// What other folders may import from imagetools.
export * from "./manifest.ts";
export * from "./units.ts";
export * from "./cli_kit.ts";
export * from "./progress.ts";
export * from "./log.ts";
export * from "./hashing.ts";
export * from "./image_io.ts";
export * from "./direct_write.ts";
export * from "./slice.ts";
export * from "./verify.ts";
export * from "./assemble.ts";
export * from "./info.ts";
export { assembleMain, infoMain, sliceMain, verifyMain } from "./cli.ts";
