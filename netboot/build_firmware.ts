// build-netboot's firmware step: the files the modules name, found in the firmware folders and
// shipped compressed or not, as the kernel (its build config) loads them.

import { basename, dirname, join, resolve } from "node:path";
import { existsSync } from "./build_exec.ts";
import type { BuildOptions } from "./build_options.ts";
import { kernelFirmwareCompression, resolveFirmware } from "./firmware.ts";
import type { InitramfsParts } from "./initramfs.ts";

/** The kernel's build config (boot/config-KVER beside the kernel), if it is there. */
async function readKernelConfig(kernel: string, kver: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(join(dirname(kernel), `config-${kver}`));
  } catch {
    return undefined;
  }
}

/** Firmware the modules name, from the folders; compressed files shipped as the kernel loads. */
export async function gatherFirmware(o: BuildOptions, wanted: Map<string, string>) {
  const kver = basename(resolve(o.modules));
  const loads = kernelFirmwareCompression(await readKernelConfig(o.kernel, kver));
  const found = resolveFirmware(wanted, o.firmwareDirs, loads, existsSync);
  const firmware: InitramfsParts["firmware"] = [];
  let unpacked = 0;
  for (const pick of found.picks) {
    if (!pick.decompress) {
      firmware.push({ path: pick.ship, data: await Deno.readFile(pick.source) });
      continue;
    }
    const tool = pick.decompress === "xz" ? "xz" : "zstd";
    const out = await new Deno.Command(tool, { args: ["-dc", pick.source], stdout: "piped" })
      .output();
    if (!out.success) throw new Error(`Cannot decompress firmware "${pick.source}" with ${tool}`);
    firmware.push({ path: pick.ship, data: out.stdout });
    unpacked++;
  }
  o.log(
    `firmware: ${firmware.length} of ${wanted.size} files the modules name, from ` +
      `${o.firmwareDirs.join(", ")} (${unpacked} decompressed: the kernel loads ${
        loads.size ? [...loads].map((c) => `.${c}`).join(" and ") : "no compressed"
      } firmware itself); ${found.missing.length} not found (non-free firmware: see NETBOOT.md, ` +
      "--firmware DIR)",
  );
  return { firmware, missingFirmware: found.missing };
}
