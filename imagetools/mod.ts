// What other folders may import from imagetools.
export * from "./manifest.ts";
export * from "./kit/units.ts";
export * from "./kit/cli_kit.ts";
export * from "./kit/progress.ts";
export * from "./kit/log.ts";
export * from "./hashing/chunk_hash.ts";
export * from "./image_io.ts";
export * from "./direct_write.ts";
export * from "./slice.ts";
export * from "./verify.ts";
export * from "./assemble.ts";
export * from "./info.ts";
export { assembleMain, infoMain, sliceMain, verifyMain } from "./cli.ts";
