// GRUB configurations for the Secure Boot chain: firmware -> Debian's shim (signed by the UEFI
// CA that PCs trust) -> Debian's signed network GRUB (grubnetx64.efi.signed, as grubx64.efi)
// -> Debian's signed kernel. Under Secure Boot GRUB loads no module that is not built in, and
// Debian's signed network GRUB has TFTP but no HTTP: so the master answers GRUB over TFTP, on
// the UDP port with its HTTP port's number (GRUB's "(tftp,HOST:PORT)"), and serves the same
// per-PC decision there as on the iPXE path (netboot/tftp_server.ts maps a TFTP read of
// "boot/..." to the master's /boot/... route).
//
// Two stages as with iPXE: a fixed first stage (tftp/grub/grub.cfg, where GRUB's built-in
// prefix "/grub" looks first) asks the master for this PC's configuration, which is "image"
// (the Cascade kernel and initramfs, the kernel's signature checked through shim) or "local"
// (chain the loader on the PC's own EFI system partition, signed too, so Secure Boot stays on).
// As on the iPXE path, a master that does not answer means: boot the local disk, no loop.
// GRUB script in GRUB's house style: a counted retry loop, a visible message, a reboot.

import { type BootSettings, checkMasterUrl, renderCascadeCmdline } from "./cmdline.ts";
import { DEFAULT_EFI_LOADERS, type LocalBootOptions, type LocalReason } from "./ipxe.ts";

/** "(tftp,10.0.0.1:8080)": where GRUB reaches the master's TFTP side. */
export function grubTftpDevice(masterUrl: string): string {
  const url = new URL(checkMasterUrl(masterUrl));
  if (url.hostname.startsWith("[")) {
    throw new TypeError(
      `Bad master URL "${masterUrl}" for GRUB: Debian's GRUB cannot reach an IPv6 address here`,
    );
  }
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return `(tftp,${url.hostname}:${port})`;
}

function checkGrubArgs(args: string): string {
  // Inside a GRUB script: no expansions, quotes, separators or line breaks.
  if (/[$"'\\;&|<>{}#\n\r]/.test(args)) {
    throw new TypeError(
      `Bad kernel arguments "${args}" for GRUB: no $, quotes, backslashes, ; & | < > { } #`,
    );
  }
  return args.trim().replace(/\s+/g, " ");
}

const place = (masterUrl: string) => grubTftpDevice(masterUrl).slice(6, -1);

/**
 * Chain the first loader found on a local disk's EFI system partition; none: hand back to
 * the firmware's next boot entry. GRUB finds the partition by the file (any volume label).
 */
function localSection(local: LocalBootOptions): string {
  const loaders = local.efiLoaders ?? DEFAULT_EFI_LOADERS;
  for (const p of loaders) {
    if (!/^(\/[A-Za-z0-9_.-]+)+$/.test(p)) {
      throw new TypeError(`Bad EFI loader path "${p}": expected /EFI/DIR/FILE.efi`);
    }
  }
  // root must be the disk: GRUB's chainloader gives the loader the device of $root, and shim
  // looks for its next stage there (with root on the network it finds nothing).
  return `for loader in ${loaders.join(" ")}; do
  if search --no-floppy --file --set=root \${loader}; then
    echo "Cascade: starting (\${root})\${loader}"
    chainloader \${loader}
    boot
  fi
done
echo "Cascade: no local disk holds ${loaders.join(" or ")}: is it imaged?"
echo "Cascade: handing back to the firmware's next boot entry in 10 seconds"
sleep 10
exit
`;
}

/**
 * tftp/grub/grub.cfg: ask the master which configuration this PC runs, with retries; no
 * answer: boot the local disk (as the iPXE first stage does).
 */
export function renderGrubFirstStage(
  masterUrl: string,
  attempts = 3,
  local: LocalBootOptions = {},
): string {
  const device = grubTftpDevice(masterUrl);
  const at = place(masterUrl);
  const tries = Array.from({ length: attempts }, (_, i) => i + 1).join(" ");
  return `# Cascade GRUB first stage (rendered by netboot/grub.ts): Debian's signed GRUB reads this
# from TFTP, then asks the master which configuration this PC runs (image it, or boot its
# local disk). The master answers over TFTP on the port of its HTTP port.
set timeout=0
set cascade_master=${device}
# GRUB sets "lockdown" when the firmware runs with Secure Boot on.
if [ "\${lockdown}" = "y" ]; then
  echo "Cascade: Secure Boot is on (shim and GRUB passed; GRUB checks the kernel next)"
fi

for try in ${tries}; do
  echo "Cascade: asking ${at} what to boot for \${net_default_mac} (attempt \${try}/${attempts})"
  configfile \${cascade_master}/boot/grub/\${net_default_mac}
  echo "Cascade: the master did not answer, retrying in 5 seconds"
  sleep 5
done
echo "Cascade: the master at ${at} did not answer after ${attempts} attempts"
echo "Cascade: is \\"cascade master --netboot\\" running and reachable (UDP port too)?"
echo "Cascade: booting the local disk"
${localSection(local)}`;
}

export interface GrubImageOptions {
  masterUrl: string;
  /** MAC the configuration is for, "aa-bb-cc-dd-ee-ff" (BOOTIF for /init, and the comment). */
  mac: string;
  settings: BootSettings;
  kernelArgs: string;
  attempts?: number;
}

/** Per-PC configuration: boot the Cascade kernel and initramfs with the settings pinned. */
export function renderGrubImageConfig(o: GrubImageOptions): string {
  if (!/^([0-9a-f]{2}-){5}[0-9a-f]{2}$/.test(o.mac)) {
    throw new TypeError(`Bad MAC "${o.mac}" for GRUB: expected aa-bb-cc-dd-ee-ff`);
  }
  const device = grubTftpDevice(o.masterUrl);
  const at = place(o.masterUrl);
  const args = checkGrubArgs(o.kernelArgs);
  const attempts = o.attempts ?? 5;
  const tries = Array.from({ length: attempts }, (_, i) => i + 1).join(" ");
  return `# Cascade: image this machine (${o.mac}), rendered by netboot/grub.ts. GRUB checks the
# kernel's signature through shim (Secure Boot); BOOTIF tells /init which interface booted.
set cascade_boot=${device}/boot

for try in ${tries}; do
  echo "Cascade: loading the imaging system from ${at} (attempt \${try}/${attempts})"
  if linux \${cascade_boot}/vmlinuz ${args} BOOTIF=01-${o.mac} ${
    renderCascadeCmdline(o.settings)
  }; then
    if initrd \${cascade_boot}/initrd; then
      boot
    fi
  fi
  echo "Cascade: loading failed, retrying in 5 seconds"
  sleep 5
done
echo "Cascade: cannot load the imaging system from ${at} after ${attempts} attempts"
echo "Cascade: rebooting in 30 seconds"
sleep 30
reboot
`;
}

const LOCAL_WHY: Record<LocalReason, string> = {
  imaged: "this PC is imaged with the current image",
  "not-enrolled": "this PC is not enrolled for imaging",
};

/**
 * Per-PC configuration for a PC that boots its own disk: chain the loader on its EFI system
 * partition (the removable-media path every installer writes, then Windows' own). It is
 * signed, so the firmware and shim let it run with Secure Boot on. No loader: hand back to the
 * firmware, which goes on to its next boot entry.
 */
export function renderGrubLocalConfig(
  mac: string,
  reason: LocalReason = "imaged",
  local: LocalBootOptions = {},
): string {
  return `# Cascade: ${mac} boots its local disk (rendered by netboot/grub.ts): ${
    LOCAL_WHY[reason]
  }.
# Chains the signed loader on the disk's EFI system partition; Secure Boot stays on.

echo "Cascade: ${LOCAL_WHY[reason]}: booting its local disk"
${localSection(local)}`;
}
