// The cascade.* settings on the kernel command line: rendered by the master into the iPXE
// script, read back by the netbooted PC, and turned into `cascade client` flags. Every value is
// checked both ways so a bad setting fails with a clear message instead of a half-imaged disk.
// Nothing here is a secret: any host on the LAN can ask for a boot script (DESIGN.md "Trust"),
// so no credential is ever put on a kernel command line; a netbooted PC needs none.

import { parseTargetRule } from "./target_rule.ts";

export const AFTER_ACTIONS = ["serve", "reboot", "poweroff"] as const;
export type AfterAction = typeof AFTER_ACTIONS[number];

export interface BootSettings {
  /** Master base URL, no trailing slash, e.g. "http://10.0.0.1:8080". */
  master: string;
  /** Disk to image: a device path ("/dev/sda") or a target rule ("auto"; target_rule.ts). */
  target: string;
  /** The SHA-256 of the manifest to accept (64 lowercase hex digits); absent: the master's. */
  imageId?: string;
  after: AfterAction;
  /** Seconds to listen for the switch's LLDP frame on the boot interface (absent: not at all);
   * set through the build's --kernel-args ("cascade.lldp=31": switches send one every 30 s). */
  lldp?: number;
}

/** Kernel parameter names, in the order they are rendered. */
export const CMDLINE_KEYS = {
  master: "cascade.master",
  imageId: "cascade.image",
  target: "cascade.target",
  after: "cascade.after",
  lldp: "cascade.lldp",
} as const;

export function checkMasterUrl(value: string, what = "master URL"): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new TypeError(`Bad ${what} "${value}": not a URL (expected http://HOST[:PORT])`, {
      cause,
    });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`Bad ${what} "${value}": must start with http:// or https://`);
  }
  if (url.username || url.password || url.search || url.hash || /[\s"'\\${}]/.test(value)) {
    throw new TypeError(
      `Bad ${what} "${value}": no credentials, query, fragment, spaces or quotes allowed`,
    );
  }
  return value.replace(/\/+$/, "");
}

export function checkImageId(value: string, what = "image id"): string {
  if (!/^[0-9a-f]{64}$/.test(value)) {
    throw new TypeError(`Bad ${what} "${value}": must be 64 lowercase hex digits (a SHA-256)`);
  }
  return value;
}

export function checkAfter(value: string, what = "after action"): AfterAction {
  if (!(AFTER_ACTIONS as readonly string[]).includes(value)) {
    throw new TypeError(`Bad ${what} "${value}": must be one of ${AFTER_ACTIONS.join(", ")}`);
  }
  return value as AfterAction;
}

/** A device path ("/dev/sda") or a target rule ("auto", "min:200GB,model:Samsung*"). */
export function checkTarget(value: string, what = "target disk"): string {
  if (!value.startsWith("/")) {
    try {
      parseTargetRule(value);
    } catch (cause) {
      const why = (cause as Error).message.replace(/^Bad target rule "[^"]*": /, "");
      throw new TypeError(
        `Bad ${what} "${value}": must be a device path such as /dev/sda or a target rule (${why})`,
        { cause },
      );
    }
    return value;
  }
  if (!/^\/dev\/[A-Za-z0-9._\/:+-]+$/.test(value) || value.split("/").includes("..")) {
    throw new TypeError(`Bad ${what} "${value}": must be a device path such as /dev/sda`);
  }
  return value;
}

export function checkLldpWait(value: string, what = "LLDP wait"): number {
  if (!/^\d{1,3}$/.test(value)) {
    throw new TypeError(`Bad ${what} "${value}": must be seconds to wait, 0 to 999`);
  }
  return Number(value);
}

/** Check a whole settings object (for rendering); throws the first problem. */
export function checkBootSettings(s: BootSettings): BootSettings {
  return {
    master: checkMasterUrl(s.master),
    target: checkTarget(s.target),
    ...(s.imageId !== undefined ? { imageId: checkImageId(s.imageId) } : {}),
    after: checkAfter(s.after),
    ...(s.lldp !== undefined ? { lldp: checkLldpWait(String(s.lldp)) } : {}),
  };
}

/** "cascade.master=... cascade.image=..." for a kernel command line. */
export function renderCascadeCmdline(s: BootSettings): string {
  const c = checkBootSettings(s);
  const parts = [`${CMDLINE_KEYS.master}=${c.master}`];
  if (c.imageId) parts.push(`${CMDLINE_KEYS.imageId}=${c.imageId}`);
  parts.push(`${CMDLINE_KEYS.target}=${c.target}`, `${CMDLINE_KEYS.after}=${c.after}`);
  if (c.lldp !== undefined) parts.push(`${CMDLINE_KEYS.lldp}=${c.lldp}`);
  return parts.join(" ");
}

/** Split a kernel command line into words, honouring double quotes as the kernel does. */
export function splitCmdline(text: string): string[] {
  const words: string[] = [];
  let word = "", inWord = false, quoted = false;
  for (const ch of text) {
    if (ch === '"') {
      quoted = !quoted;
      inWord = true;
    } else if (/\s/.test(ch) && !quoted) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/**
 * Read cascade.* settings from a kernel command line (e.g. /proc/cmdline). Every problem is
 * reported at once, in one TypeError, so one reboot fixes them all.
 */
export function parseCascadeCmdline(text: string): BootSettings {
  const raw = new Map<string, string>();
  const known = new Set<string>(Object.values(CMDLINE_KEYS));
  const problems: string[] = [];
  for (const w of splitCmdline(text)) {
    if (!w.startsWith("cascade.")) continue;
    const eq = w.indexOf("=");
    const key = eq < 0 ? w : w.slice(0, eq);
    if (!known.has(key)) {
      problems.push(`unknown setting "${key}"`);
      continue;
    }
    raw.set(key, eq < 0 ? "" : w.slice(eq + 1)); // the last one wins, as for the kernel
  }
  const get = (k: keyof typeof CMDLINE_KEYS) => raw.get(CMDLINE_KEYS[k]);
  const check = <T>(k: keyof typeof CMDLINE_KEYS, f: (v: string, what: string) => T) => {
    const v = get(k);
    if (v === undefined) return undefined;
    try {
      return f(v, CMDLINE_KEYS[k]);
    } catch (e) {
      problems.push((e as Error).message.replace(/^Bad /, ""));
      return undefined;
    }
  };
  const master = check("master", checkMasterUrl);
  if (get("master") === undefined) problems.push(`${CMDLINE_KEYS.master}=URL is missing`);
  const target = check("target", checkTarget);
  if (get("target") === undefined) problems.push(`${CMDLINE_KEYS.target}=DISK is missing`);
  const imageId = check("imageId", checkImageId);
  const after = check("after", checkAfter) ?? "serve";
  const lldp = check("lldp", checkLldpWait);
  if (problems.length) {
    throw new TypeError(`Bad cascade settings on the kernel command line: ${problems.join("; ")}`);
  }
  return {
    master: master!,
    target: target!,
    ...(imageId ? { imageId } : {}),
    after,
    ...(lldp !== undefined ? { lldp } : {}),
  };
}

/** The `cascade client` arguments for these settings (the CLI contract /init relies on). */
export function clientArgs(s: BootSettings): string[] {
  const c = checkBootSettings(s);
  const args = ["client", "--master", c.master, "--target", c.target];
  if (c.imageId) args.push("--image-id", c.imageId);
  args.push("--after", c.after);
  return args;
}
