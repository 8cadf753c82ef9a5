// build-netboot --secure-boot DIR: put Debian's signed chain into the TFTP folder (shim as
// shimx64.efi, the signed network GRUB as grubx64.efi: the name shim loads next) and GRUB's
// first stage where GRUB's built-in prefix looks (grub/grub.cfg). DIR is what
// scripts/fetch_secureboot.sh unpacked. The kernel must be signed too, or Secure Boot refuses.

import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { renderGrubFirstStage } from "./grub.ts";
import { peSignatureSize } from "./pe_signature.ts";

/** Where the two packages put the files, inside the unpacked folder. */
export const SIGNED_FILES = {
  "shimx64.efi": "usr/lib/shim/shimx64.efi.signed",
  "grubx64.efi": "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
} as const;

export interface SecureBootFiles {
  /** Paths written, relative to the build folder. */
  written: string[];
  /** For build.json: each signed file's source and SHA-256. */
  inputs: Record<string, { path: string; sha256: string }>;
}

export async function addSecureBootChain(
  dir: string,
  out: string,
  master: string,
  kernel: string,
): Promise<SecureBootFiles> {
  const kernelBytes = await Deno.readFile(kernel);
  let signed = 0;
  try {
    signed = peSignatureSize(kernelBytes, kernel);
  } catch { /* not even a PE file: unsigned */ }
  if (signed === 0) {
    throw new Error(
      `Cannot build the Secure Boot chain: the kernel "${kernel}" is not signed (Secure Boot ` +
        "would refuse it); use Debian's signed kernel: bash scripts/fetch_kernel.sh",
    );
  }
  const written: string[] = [];
  const inputs: SecureBootFiles["inputs"] = {};
  for (const [name, rel] of Object.entries(SIGNED_FILES)) {
    const source = join(dir, rel);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(source);
    } catch (cause) {
      throw new Error(
        `Cannot find "${rel}" in --secure-boot folder "${dir}": get it with ` +
          "bash scripts/fetch_secureboot.sh (then pass the SECURE_BOOT=... it prints)",
        { cause },
      );
    }
    if (peSignatureSize(bytes, source) === 0) {
      throw new Error(`Cannot use "${source}" for Secure Boot: it is not signed`);
    }
    await Deno.mkdir(join(out, "tftp"), { recursive: true });
    await Deno.writeFile(join(out, "tftp", name), bytes);
    written.push(`tftp/${name}`);
    inputs[name.replace(/\.efi$/, "")] = {
      path: source,
      sha256: createHash("sha256").update(bytes).digest("hex"),
    };
  }
  const cfg = join(out, "tftp/grub/grub.cfg");
  await Deno.mkdir(dirname(cfg), { recursive: true });
  await Deno.writeTextFile(cfg, renderGrubFirstStage(master));
  written.push("tftp/grub/grub.cfg");
  return { written, inputs };
}
