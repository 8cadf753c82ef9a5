// build.json: what a netboot build was made for (the master, the disk, the after action, the
// kernel arguments: the master serves its boot files with these) and what went into it (so the
// same build can be made again and checked against this one). Written by build-netboot, read by
// the master (`--netboot DIR`) and its boot routes. Pure: render and parse, no I/O.
import { type AfterAction, checkAfter, checkMasterUrl, checkTarget } from "./cmdline.ts";
import type { CascadeBinary } from "./initramfs.ts";

export type BinaryMode = CascadeBinary["mode"];
const BINARY_MODES: readonly BinaryMode[] = ["compiled", "bundle"];

export interface BuildInputs {
  kernel: { path: string; sha256: string };
  modules: { path: string };
  busybox: { path: string; sha256: string };
  deno: { path: string; version: string; sha256: string };
  cascade: { mode: BinaryMode; sha256: string };
  /** Secure boot builds: the signed shim and GRUB (build_secureboot.ts). */
  shimx64?: SignedInput;
  grubx64?: SignedInput;
}

export interface SignedInput {
  path: string;
  sha256: string;
}

const SIGNED_INPUTS = ["shimx64", "grubx64"] as const;

export interface BuildInfo {
  /** The master's URL the boot files name (no trailing slash). */
  master: string;
  kernelVersion: string;
  /** Kernel arguments besides cascade.*. */
  kernelArgs: string;
  binaryMode: BinaryMode;
  /** How the initramfs is compressed, e.g. "zstd -19". */
  compression: string;
  /** The disk to image: a device path or a target rule. */
  target: string;
  after: AfterAction;
  /** Counts: kernel modules and firmware files in the initramfs; its uncompressed size. */
  modules: number;
  firmware: number;
  /** Whether the UEFI chain is shim -> GRUB -> kernel, all signed (--secure-boot). */
  secureBoot: boolean;
  cpioBytes: number;
  inputs: BuildInputs;
}

/** build.json's text: two-space JSON, fields in the order of BuildInfo, a final newline. */
export function renderBuildInfo(info: BuildInfo): string {
  const { kernel, modules, busybox, deno, cascade } = info.inputs;
  const ordered: BuildInfo = {
    master: info.master,
    kernelVersion: info.kernelVersion,
    kernelArgs: info.kernelArgs,
    binaryMode: info.binaryMode,
    compression: info.compression,
    target: info.target,
    after: info.after,
    modules: info.modules,
    firmware: info.firmware,
    secureBoot: info.secureBoot,
    cpioBytes: info.cpioBytes,
    inputs: {
      kernel: { path: kernel.path, sha256: kernel.sha256 },
      modules: { path: modules.path },
      busybox: { path: busybox.path, sha256: busybox.sha256 },
      deno: { path: deno.path, version: deno.version, sha256: deno.sha256 },
      cascade: { mode: cascade.mode, sha256: cascade.sha256 },
      ...Object.fromEntries(
        SIGNED_INPUTS.flatMap((name) => {
          const signed = info.inputs[name];
          return signed ? [[name, { path: signed.path, sha256: signed.sha256 }]] : [];
        }),
      ),
    },
  };
  return JSON.stringify(ordered, null, 2) + "\n";
}

type Obj = Record<string, unknown>;

/**
 * Parse build.json's text; `where` names the file in errors. Every field is required (a
 * build-netboot wrote it); one SyntaxError names the file, the field and the value.
 */
export function parseBuildInfo(text: string, where = "build.json"): BuildInfo {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new SyntaxError(`Invalid build info "${where}": not JSON (${(cause as Error).message})`, {
      cause,
    });
  }
  const bad = (field: string, value: unknown, why: string): never => {
    throw new SyntaxError(
      `Invalid build info "${where}": field "${field}" (${show(value)}) ${why}`,
    );
  };
  const object = (o: unknown, field: string): Obj =>
    typeof o === "object" && o !== null && !Array.isArray(o)
      ? o as Obj
      : bad(field, o, "must be an object");
  const top = object(raw, "(top level)");
  const at = (o: Obj, path: string) => o[path.split(".").pop()!];
  const string = (o: Obj, path: string): string => {
    const v = at(o, path);
    return typeof v === "string" ? v : bad(path, v, "must be a string");
  };
  const sha256 = (o: Obj, path: string): string => {
    const v = string(o, path);
    return /^[0-9a-f]{64}$/.test(v) ? v : bad(path, v, "must be 64 lowercase hex digits");
  };
  const count = (o: Obj, path: string): number => {
    const v = at(o, path);
    return Number.isSafeInteger(v) && (v as number) >= 0
      ? v as number
      : bad(path, v, "must be a whole number >= 0");
  };
  const flag = (o: Obj, path: string): boolean => {
    const v = at(o, path);
    return typeof v === "boolean" ? v : bad(path, v, "must be true or false");
  };
  const mode = (o: Obj, path: string): BinaryMode => {
    const v = string(o, path);
    return (BINARY_MODES as readonly string[]).includes(v)
      ? v as BinaryMode
      : bad(path, v, `must be one of ${BINARY_MODES.join(", ")}`);
  };
  const checked = <T>(path: string, check: (value: string, what: string) => T): T => {
    const v = string(top, path);
    try {
      return check(v, `"${path}"`);
    } catch (cause) {
      const why = (cause as Error).message.replace(/^Bad "[^"]*" "(?:[^"\\]|\\.)*": /, "");
      throw new SyntaxError(`Invalid build info "${where}": field "${path}" (${show(v)}) ${why}`, {
        cause,
      });
    }
  };
  const inputs = object(top.inputs, "inputs");
  const kernel = object(inputs.kernel, "inputs.kernel");
  const modules = object(inputs.modules, "inputs.modules");
  const busybox = object(inputs.busybox, "inputs.busybox");
  const deno = object(inputs.deno, "inputs.deno");
  const cascade = object(inputs.cascade, "inputs.cascade");
  return {
    master: checked("master", checkMasterUrl),
    kernelVersion: string(top, "kernelVersion"),
    kernelArgs: string(top, "kernelArgs"),
    binaryMode: mode(top, "binaryMode"),
    compression: string(top, "compression"),
    target: checked("target", checkTarget),
    after: checked("after", checkAfter),
    modules: count(top, "modules"),
    firmware: count(top, "firmware"),
    secureBoot: flag(top, "secureBoot"),
    cpioBytes: count(top, "cpioBytes"),
    inputs: {
      kernel: {
        path: string(kernel, "inputs.kernel.path"),
        sha256: sha256(kernel, "inputs.kernel.sha256"),
      },
      modules: { path: string(modules, "inputs.modules.path") },
      busybox: {
        path: string(busybox, "inputs.busybox.path"),
        sha256: sha256(busybox, "inputs.busybox.sha256"),
      },
      deno: {
        path: string(deno, "inputs.deno.path"),
        version: string(deno, "inputs.deno.version"),
        sha256: sha256(deno, "inputs.deno.sha256"),
      },
      cascade: {
        mode: mode(cascade, "inputs.cascade.mode"),
        sha256: sha256(cascade, "inputs.cascade.sha256"),
      },
      ...Object.fromEntries(
        SIGNED_INPUTS.filter((name) => inputs[name] !== undefined).map((name) => {
          const signed = object(inputs[name], `inputs.${name}`);
          const path = string(signed, `inputs.${name}.path`);
          return [name, { path, sha256: sha256(signed, `inputs.${name}.sha256`) }];
        }),
      ),
    },
  };
}

function show(value: unknown): string {
  return value === undefined ? "missing" : JSON.stringify(value);
}
