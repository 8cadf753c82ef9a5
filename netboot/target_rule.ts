// Which disk a PC images: a target rule instead of one fixed path for the whole room (a room
// mixes NVMe and SATA PCs; /dev/sda can be a USB stick or a second data disk). Pure: the disks
// come in as a list (netboot/sys_block.ts reads them from /sys/block), the choice goes out with
// the reason in words, shown on the PC's console and the dashboard before anything is written.
//
// A rule is comma-separated terms (no spaces, so it fits on a kernel command line):
//   auto            the default: the first non-removable disk of at least the image's size
//   path:/dev/X     only this disk
//   model:GLOB      the disk's model matches (case-insensitive; * any, ? one character,
//                   _ a space or an underscore)
//   min:SIZE        at least SIZE (e.g. min:200GB); the image's size is always the floor
//   max:SIZE        at most SIZE
//   usb             USB and removable disks may be chosen too (never without it)
//   largest         the largest matching disk instead of the first
// "First" is the kernel's order by kind: NVMe, then SATA/SCSI (sd), virtio (vd), IDE (hd),
// MMC; by number within a kind.
import { formatBytes, parseSize } from "../imagetools/kit/mod.ts";

export interface DiskInfo {
  /** Kernel name, e.g. "nvme0n1", "sda". */
  name: string;
  /** Bytes. */
  size: number;
  /** The kernel's removable flag (card readers, many USB sticks). */
  removable: boolean;
  /** On a USB bus (a USB disk, whatever its removable flag says). */
  usb: boolean;
  readOnly: boolean;
  /** "nvme", "sata/scsi", "virtio", "ide", "mmc" or "other". */
  kind: string;
  model: string;
}

export interface TargetRule {
  text: string;
  path?: string;
  model?: string;
  min?: number;
  max?: number;
  usb: boolean;
  largest: boolean;
}

const SPECIAL = /^(loop|ram|zram|sr|fd|dm-|md|nbd|mtdblock)|^mmcblk\d+boot|rpmb$/;
const EXAMPLES: Record<string, string> = {
  path: "path:/dev/nvme0n1",
  model: "model:Samsung*",
  min: "min:64GB",
  max: "max:1TB",
};
const KIND_ORDER = ["nvme", "sata/scsi", "virtio", "ide", "mmc", "other"];

/** Parse a rule ("auto", "min:200GB,model:Samsung*", ...); TypeError names the bad term. */
export function parseTargetRule(text: string): TargetRule {
  const rule: TargetRule = { text, usb: false, largest: false };
  if (text.trim() === "") throw new TypeError(`Bad target rule "": give "auto" or terms`);
  for (const term of text.split(",")) {
    const colon = term.indexOf(":");
    const key = colon < 0 ? term : term.slice(0, colon);
    const value = colon < 0 ? undefined : term.slice(colon + 1);
    const bad = (why: string, o?: ErrorOptions) =>
      new TypeError(`Bad target rule "${text}": term "${term}" ${why}`, o);
    const needValue = () => {
      if (!value) throw bad("needs a value after the colon");
      return value;
    };
    if (colon < 0 && ["path", "model", "min", "max"].includes(key)) {
      throw bad(`needs a value (e.g. ${EXAMPLES[key]})`);
    }
    if (key === "auto" && colon < 0) continue;
    if (key === "usb" && colon < 0) rule.usb = true;
    else if (key === "largest" && colon < 0) rule.largest = true;
    else if (key === "path") {
      const v = needValue();
      if (!/^\/dev\/[A-Za-z0-9._\/:+-]+$/.test(v) || v.split("/").includes("..")) {
        throw bad("must name a device such as /dev/nvme0n1");
      }
      rule.path = v;
    } else if (key === "model") {
      const v = needValue();
      if (!/^[A-Za-z0-9*?_.+-]+$/.test(v)) throw bad("may hold only A-Z a-z 0-9 * ? _ . + -");
      rule.model = v;
    } else if (key === "min" || key === "max") {
      let n: number;
      try {
        n = parseSize(needValue(), `size in target rule "${text}"`);
      } catch (cause) {
        throw bad(`has no size (e.g. ${key}:64GB)`, { cause });
      }
      rule[key] = n;
    } else {
      throw bad("is unknown (known: auto, path:, model:, min:, max:, usb, largest)");
    }
  }
  return rule;
}

function globToRegExp(glob: string): RegExp {
  const src = [...glob].map((ch) =>
    ch === "*" ? ".*" : ch === "?" ? "." : ch === "_" ? "[ _]" : ch.replace(/[.+]/, "\\$&")
  ).join("");
  return new RegExp(`^${src}$`, "i");
}

export interface TargetChoice {
  /** "/dev/NAME" of the chosen disk, or null when none matches. */
  path: string | null;
  disk?: DiskInfo;
  /** One sentence: what was chosen and why, then each disk passed over and why. */
  reason: string;
}

function describe(d: DiskInfo): string {
  const model = d.model ? `, "${d.model}"` : "";
  return `/dev/${d.name} (${d.kind}, ${formatBytes(d.size)}${model}${d.usb ? ", USB" : ""})`;
}

function kindRank(d: DiskInfo): [number, number, string] {
  const num = Number(/(\d+)/.exec(d.name)?.[1] ?? 0);
  return [KIND_ORDER.indexOf(d.kind), num, d.name];
}

function byKernelOrder(a: DiskInfo, b: DiskInfo): number {
  const [ka, na, sa] = kindRank(a);
  const [kb, nb, sb] = kindRank(b);
  return ka - kb || (sa.length - sb.length) || na - nb || sa.localeCompare(sb);
}

/** Choose the disk for an image of `imageSize` bytes. Pure; never throws for "no match". */
export function chooseTarget(rule: TargetRule, disks: DiskInfo[], imageSize: number): TargetChoice {
  const model = rule.model ? globToRegExp(rule.model) : undefined;
  const floor = Math.max(imageSize, rule.min ?? 0);
  const skipped: string[] = [];
  const fits: DiskInfo[] = [];
  for (const d of [...disks].sort(byKernelOrder)) {
    if (SPECIAL.test(d.name)) continue; // loop, RAM, optical ...: never a lab PC's disk
    const why = rule.path && rule.path !== `/dev/${d.name}`
      ? `not ${rule.path}`
      : d.readOnly
      ? "read-only"
      : (d.usb || d.removable) && !rule.usb
      ? (d.usb ? "USB" : "removable") + ' (the rule has no "usb")'
      : d.size < floor
      ? `${formatBytes(d.size)}, under ${formatBytes(floor)}`
      : rule.max !== undefined && d.size > rule.max
      ? `${formatBytes(d.size)}, over ${formatBytes(rule.max)}`
      : model && !model.test(d.model)
      ? `model "${d.model}" is not ${rule.model}`
      : "";
    if (why) skipped.push(`/dev/${d.name}: ${why}`);
    else fits.push(d);
  }
  const wanted = [
    rule.largest ? "the largest" : "the first",
    rule.usb ? "disk" : "non-removable disk",
    `of at least ${formatBytes(floor)}`,
    ...(rule.max !== undefined ? [`and at most ${formatBytes(rule.max)}`] : []),
    ...(rule.model ? [`with a model like ${rule.model}`] : []),
    ...(rule.path ? [`at ${rule.path}`] : []),
  ].join(" ");
  const passed = skipped.length ? `; passed over ${skipped.join("; ")}` : "";
  if (fits.length === 0) {
    const seen = disks.filter((d) => !SPECIAL.test(d.name)).length;
    return {
      path: null,
      reason: `No disk matches target rule "${rule.text}" (${wanted}): ${
        seen ? `${seen} disk(s) seen` : "no disk seen"
      }${passed}`,
    };
  }
  const disk = rule.largest ? fits.reduce((a, b) => (b.size > a.size ? b : a)) : fits[0];
  return {
    path: `/dev/${disk.name}`,
    disk,
    reason: `Chose ${describe(disk)} by target rule "${rule.text}": ${wanted}${passed}`,
  };
}
