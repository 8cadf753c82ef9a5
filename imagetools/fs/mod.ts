// File-system-aware slicing: partition tables (MBR, GPT) and the used-block maps of NTFS,
// ext2/3/4, FAT12/16/32, exFAT, XFS, Btrfs and Linux swap (also in LVM2 linear logical
// volumes), read through an injected ReadAt. Pure.
export {
  analyzeDisk,
  type DiskLayout,
  type FsKind,
  isWhollyFree,
  keptBytes,
  keptRuns,
  type Volume,
  zeroFreeBlocks,
} from "./analyze.ts";
export { bytesReader, type ReadAt } from "./reader.ts";
export { type Partition, readPartitionTable } from "./partitions.ts";
export { type UsedMap } from "./used_map.ts";
export * from "./gpt_backup.ts";
