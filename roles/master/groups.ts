// The groups file (`cascade master --groups FILE`): which PCs are enrolled for imaging, and per
// group how: the target rule, the after action and the finishing step. Only enrolled PCs ever
// get the imaging script; every other PC that network-boots boots its own disk (a staff PC on
// the lab's subnet must never lose its disk because it booted from the network once).
//
//   # Cascade groups
//   [room-101]                          a group: letters, digits, . _ -
//   mac = 52:54:00:12:34:56 pc01        one PC, optionally its name (CASCADE_PC_NAME)
//   macs = 52:54:00:12:34:57, 52-54-00-12-34-58
//   target = auto                       a target rule or a device path (default: the build's)
//   after = reboot                      serve | reboot | poweroff (default: the build's)
//   image = games                       the image its PCs get (a master's --image NAME=DIR)
//   finish = finish/hostname.sh         finishing step, a shell script (relative to this file)
//   set HOSTNAME_PREFIX = lab101        a setting for the finishing step's environment
//
// Pure: parseGroups takes the text and a reader for finishing scripts; every problem is one
// SyntaxError naming the file, the line and the value.
import { type AfterAction, checkAfter, checkTarget, normalizeMac } from "../../netboot/mod.ts";

export interface Group {
  name: string;
  /** MAC ("aa:bb:cc:dd:ee:ff") -> the PC's name ("" when the file gives none). */
  pcs: Map<string, string>;
  target?: string;
  after?: AfterAction;
  /** The image its PCs get: a name the master was given (--image NAME=DIR); default the first. */
  image?: string;
  finish?: { name: string; script: string };
  settings: Record<string, string>;
}

export interface Groups {
  groups: Group[];
  /** MAC -> its group. */
  byMac: Map<string, Group>;
}

const MAX_SCRIPT = 64 * 1024;

/**
 * Parse a groups file. `readScript(path)` returns a finishing script's text (paths as written
 * in the file); it throws when the file cannot be read.
 */
export function parseGroups(
  text: string,
  file: string,
  readScript: (path: string) => string,
): Groups {
  const groups: Group[] = [];
  const byMac = new Map<string, Group>();
  const lineOf = new Map<string, number>();
  let group: Group | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const fail = (why: string, cause?: unknown): never => {
      throw new SyntaxError(
        `Bad groups file "${file}" line ${n}: ${why}`,
        cause ? { cause } : undefined,
      );
    };
    const line = lines[i].replace(/(^|\s)#.*$/, "").trim();
    if (line === "") continue;
    const header = /^\[(.*)\]$/.exec(line);
    if (header) {
      const name = header[1].trim();
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
        fail(`group name "${name}" must be 1 to 64 of A-Z a-z 0-9 . _ -`);
      }
      if (groups.some((g) => g.name === name)) fail(`group "${name}" is defined twice`);
      group = { name, pcs: new Map(), settings: {} };
      groups.push(group);
      continue;
    }
    const m = /^([a-z]+)(?:\s+([A-Za-z_][A-Za-z0-9_]*))?\s*=\s*(.*)$/.exec(line);
    if (!m) fail(`"${line}" is not "key = value" or "[group]"`);
    const [, key, setName, value] = m!;
    if (!group) fail(`"${key}" comes before any "[group]" line`);
    const g = group!;
    if (setName !== undefined && key !== "set") fail(`"${key} ${setName}" is not a key`);
    if (value === "") fail(`"${key}" has no value`);
    const addMac = (raw: string, pcName: string) => {
      const mac = normalizeMac(raw);
      if (!mac) fail(`"${raw}" is not a MAC address (expected aa:bb:cc:dd:ee:ff)`);
      const other = byMac.get(mac!);
      if (other) {
        fail(`MAC "${mac}" is already in group "${other.name}" (line ${lineOf.get(mac!)})`);
      }
      byMac.set(mac!, g);
      lineOf.set(mac!, n);
      g.pcs.set(mac!, pcName);
    };
    switch (key) {
      case "mac": {
        const [raw, pcName = "", ...rest] = value.split(/\s+/);
        if (rest.length) fail(`"mac = ${value}": expected a MAC and at most a PC name`);
        if (pcName && !/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(pcName)) {
          fail(`PC name "${pcName}" must be a host name (A-Z a-z 0-9 . -)`);
        }
        addMac(raw, pcName);
        break;
      }
      case "macs":
        for (const raw of value.split(/[\s,]+/).filter(Boolean)) addMac(raw, "");
        break;
      case "target":
        try {
          g.target = checkTarget(value, "target");
        } catch (err) {
          fail((err as Error).message, err);
        }
        break;
      case "after":
        try {
          g.after = checkAfter(value, "after");
        } catch (err) {
          fail((err as Error).message, err);
        }
        break;
      case "image":
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(value)) {
          fail(
            `image "${value}" must be an image name (A-Z a-z 0-9 . _ -), as in --image NAME=DIR`,
          );
        }
        g.image = value;
        break;
      case "finish": {
        let script = "";
        try {
          script = readScript(value);
        } catch (err) {
          fail(`cannot read finishing step "${value}": ${(err as Error).message}`, err);
        }
        if (script.length > MAX_SCRIPT) {
          fail(`finishing step "${value}" is over ${MAX_SCRIPT} bytes`);
        }
        g.finish = { name: value.split("/").pop()!, script };
        break;
      }
      case "set":
        if (setName === undefined) fail(`"set" needs a name: set NAME = value`);
        if (!/^[A-Z][A-Z0-9_]{0,63}$/.test(setName!) || setName!.startsWith("CASCADE_")) {
          fail(`setting "${setName}" must be upper case (A-Z 0-9 _), not CASCADE_*`);
        }
        g.settings[setName!] = value;
        break;
      default:
        fail(`unknown key "${key}" (known: mac, macs, target, after, image, finish, set)`);
    }
  }
  return { groups, byMac };
}

/** Read and parse a groups file; finishing scripts are read relative to it. */
export function loadGroups(path: string): Groups {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (cause) {
    throw new Error(`Cannot read the groups file "${path}": ${(cause as Error).message}`, {
      cause,
    });
  }
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/") + 1) : "";
  return parseGroups(
    text,
    path,
    (p) => Deno.readTextFileSync(p.startsWith("/") ? p : dir + p),
  );
}
