// Firmware files the shipped modules name (.modinfo "firmware="), found in the firmware folders
// the build was given. Debian ships many files compressed ("rtl_nic/rtl8168h-2.fw.xz"); a
// kernel built with FW_LOADER_COMPRESS_XZ (or _ZSTD) loads "name.xz" ("name.zst") itself when
// "name" is missing, so such a file is shipped as it is; a kernel without that support gets
// it decompressed at build time under its plain name. Pure: the shell answers `has` and reads.

export type FirmwareCompression = "xz" | "zst";

/** Suffixes in the order the kernel's firmware loader tries them (plain, then zstd, then xz). */
const SUFFIXES: readonly ("" | `.${FirmwareCompression}`)[] = ["", ".zst", ".xz"];

export interface FirmwarePick {
  /** The name the module asks for, relative to /lib/firmware. */
  name: string;
  /** The file found (absolute, or as the folder was given). */
  source: string;
  /** Where it goes under lib/firmware/ in the initramfs. */
  ship: string;
  /** Decompress the source with this before shipping it (the kernel cannot). */
  decompress?: FirmwareCompression;
}

export interface FirmwareResolution {
  picks: FirmwarePick[];
  /** Names found in no folder under any suffix. */
  missing: string[];
}

/**
 * Which compressed firmware the kernel loads by itself, from its build config
 * (/boot/config-KVER): FW_LOADER_COMPRESS plus _XZ or _ZSTD (6.1 and later), or
 * FW_LOADER_COMPRESS alone (5.x, xz only). No config: nothing, so everything is decompressed.
 */
export function kernelFirmwareCompression(config: string | undefined): Set<FirmwareCompression> {
  const on = (key: string) => new RegExp(`^CONFIG_${key}=y$`, "m").test(config ?? "");
  const out = new Set<FirmwareCompression>();
  if (!on("FW_LOADER_COMPRESS")) return out;
  const split = /^(# )?CONFIG_FW_LOADER_COMPRESS_(XZ|ZSTD)[= ]/m.test(config ?? "");
  if (!split || on("FW_LOADER_COMPRESS_XZ")) out.add("xz");
  if (on("FW_LOADER_COMPRESS_ZSTD")) out.add("zst");
  return out;
}

function checkName(name: string, module: string): string {
  if (name === "" || name.startsWith("/") || name.split("/").includes("..")) {
    throw new TypeError(`Bad firmware name "${name}" named by "${module}": not a relative path`);
  }
  return name;
}

/**
 * Find each wanted firmware file: folder by folder (the first folder given wins, so an added
 * folder overrides the system's), each under its plain name, then ".zst", then ".xz".
 * `wanted` maps a firmware name to the module that names it (for error messages).
 */
export function resolveFirmware(
  wanted: Map<string, string>,
  folders: string[],
  kernelLoads: Set<FirmwareCompression>,
  has: (path: string) => boolean,
): FirmwareResolution {
  const picks: FirmwarePick[] = [];
  const missing: string[] = [];
  for (const name of [...wanted.keys()].sort()) {
    checkName(name, wanted.get(name)!);
    let pick: FirmwarePick | undefined;
    search: for (const folder of folders) {
      for (const suffix of SUFFIXES) {
        const source = `${folder.replace(/\/+$/, "")}/${name}${suffix}`;
        if (!has(source)) continue;
        const compression = suffix.slice(1) as FirmwareCompression | "";
        pick = compression === "" || kernelLoads.has(compression)
          ? { name, source, ship: `${name}${suffix}` }
          : { name, source, ship: name, decompress: compression };
        break search;
      }
    }
    if (pick) picks.push(pick);
    else missing.push(name);
  }
  return { picks, missing };
}
