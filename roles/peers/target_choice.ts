// Which disk the client writes: a path as given, or the disk a target rule picks from this
// PC's /sys/block (netboot/target_rule.ts), with the reason in words, decided before anything
// is written. No matching disk is a DiskError: the PC stops, nothing written.
import { chooseTarget, parseTargetRule, readSysBlock } from "../../netboot/mod.ts";

/** The PC's disk cannot be used (no disk matches, or it fails writes or reads). */
export class DiskError extends Error {
  override name = "DiskError";
}

export interface ChosenTarget {
  path: string;
  reason: string;
}

/** A target with a "/" is a path (a device or a file); anything else is a target rule. */
export function isTargetPath(target: string): boolean {
  return target.includes("/");
}

export function resolveTarget(
  target: string,
  imageSize: number,
  sysBlock = "/sys/block",
): ChosenTarget {
  if (isTargetPath(target)) return { path: target, reason: `Target "${target}" given as a path` };
  const rule = parseTargetRule(target);
  const choice = chooseTarget(rule, readSysBlock(sysBlock), imageSize);
  if (!choice.path) throw new DiskError(choice.reason);
  return { path: choice.path, reason: choice.reason };
}
