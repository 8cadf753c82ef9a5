// iPXE scripts, in iPXE's house style: labelled retries with a counter, `|| goto` failure paths,
// a visible message, and the local disk at the end (never a dead prompt in front of a class).
//
// Two stages: a fixed first stage (handed out by DHCP/TFTP, the same for every PC) gets an
// address and chains to the master, which answers each MAC with one of two scripts: "image"
// (boot the Cascade kernel and initramfs) or "local" (boot the disk: PCs keep netboot first in
// their boot order and must not re-image on every boot). Every way that does not end in the
// imaging system (no address, no master, a failed download) ends in the local disk: a reboot
// loop helps nobody.

import { type BootSettings, checkMasterUrl, renderCascadeCmdline } from "./cmdline.ts";

/** Kernel arguments besides the cascade.* ones. The last console= is where /init writes. */
export const DEFAULT_KERNEL_ARGS = "console=ttyS0,115200 console=tty0 loglevel=4 panic=10";

function checkKernelArgs(args: string): string {
  // The arguments end up inside an iPXE script: no expansions, quotes or line breaks.
  if (/[$"'\\\n\r]/.test(args)) {
    throw new TypeError(`Bad kernel arguments "${args}": no $, quotes, backslashes or newlines`);
  }
  return args.trim().replace(/\s+/g, " ");
}

/**
 * Where a PC's own disk is booted from when the master says "local" or cannot be reached.
 * BIOS: `sanboot --no-describe --drive 0x80` boots the first hard disk through INT 13, whatever
 * the firmware's boot order. UEFI: iPXE reads files of any FAT volume by its label
 * (`file://LABEL/path`, efi_local.c), so it chains the disk's own EFI loader from its EFI system
 * partition, again whatever the boot order; when no volume or loader matches, `exit 1` asks the
 * firmware to try its next boot entry (a bare `exit` makes OVMF and many PCs show their menu or
 * go on to their other network entries instead).
 */
export interface LocalBootOptions {
  /** Volume labels of the EFI system partition to try, in order. */
  espLabels?: string[];
  /** Loader paths on that partition to try, in order. */
  efiLoaders?: string[];
}

export const DEFAULT_ESP_LABELS = ["EFI", "ESP", "SYSTEM"];
export const DEFAULT_EFI_LOADERS = [
  "/EFI/BOOT/BOOTX64.EFI", // the removable-media path every OS installs or can install
  "/EFI/Microsoft/Boot/bootmgfw.efi", // Windows Boot Manager
];

function checkLocalBoot(o: LocalBootOptions): { labels: string[]; loaders: string[] } {
  const labels = o.espLabels ?? DEFAULT_ESP_LABELS;
  const loaders = o.efiLoaders ?? DEFAULT_EFI_LOADERS;
  for (const l of labels) {
    if (!/^[A-Za-z0-9_-]{1,11}$/.test(l)) {
      throw new TypeError(`Bad EFI volume label "${l}": 1 to 11 of A-Z a-z 0-9 _ -`);
    }
  }
  for (const p of loaders) {
    if (!/^(\/[A-Za-z0-9_.-]+)+$/.test(p)) {
      throw new TypeError(`Bad EFI loader path "${p}": expected /EFI/DIR/FILE.efi`);
    }
  }
  return { labels, loaders };
}

/** The labelled `:local` section both the first stage and the local-disk script end in. */
function renderLocalSection(o: LocalBootOptions): string {
  const { labels, loaders } = checkLocalBoot(o);
  const chains = labels.flatMap((l) => loaders.map((p) => `chain --autofree file://${l}${p} ||`))
    .join("\n");
  return `:local
iseq \${platform} efi && goto local_efi ||
echo Cascade: booting the first hard disk (BIOS drive 0x80)
sanboot --no-describe --drive 0x80 ||
echo Cascade: cannot boot drive 0x80: handing back to the firmware's next boot entry
exit 1

:local_efi
echo Cascade: booting the disk's own EFI loader (volume ${labels.join(", ")})
${chains}
echo Cascade: no EFI loader found (${loaders.join(", ")} on a volume labelled ${labels.join(", ")})
echo Cascade: handing back to the firmware's next boot entry
exit 1
`;
}

/**
 * The first stage: DHCP with retries, then chain to the master's per-machine script. A master
 * that does not answer (switched off, unreachable) means "boot the local disk": never a reboot
 * loop in front of a class, and a lab keeps working while the master is off.
 */
export function renderFirstStage(
  masterUrl: string,
  attempts = 3,
  local: LocalBootOptions = {},
): string {
  const master = checkMasterUrl(masterUrl);
  return `#!ipxe
# Cascade first stage (rendered by netboot/ipxe.ts): get an address, then ask the master
# which script this machine runs (image it, or boot its local disk). No address or no answer
# from the master: boot the local disk.

set cascade-master ${master}
set attempts:int32 ${attempts}

# Firmware that loaded this script over the network is configured already.
isset \${netX/ip} && goto chain ||
set try:int32 0
:retry_dhcp
inc try
echo Cascade: DHCP (attempt \${try}/\${attempts})
dhcp && goto chain ||
iseq \${try} \${attempts} && goto failed_dhcp ||
sleep 3
goto retry_dhcp

:chain
set try:int32 0
:retry_chain
inc try
echo Cascade: asking \${cascade-master} what to boot for \${netX/mac} (attempt \${try}/\${attempts})
chain --replace --autofree \${cascade-master}/boot/ipxe?mac=\${netX/mac:hexhyp} ||
iseq \${try} \${attempts} && goto failed_chain ||
echo Cascade: the master did not answer, retrying in 3 seconds
sleep 3
goto retry_chain

:failed_dhcp
echo Cascade: no DHCP answer after \${try} attempts: booting the local disk
goto local
:failed_chain
echo Cascade: the master at \${cascade-master} did not answer after \${try} attempts
echo Cascade: booting the local disk (start "cascade master" to image this PC)
goto local

${renderLocalSection(local)}`;
}

export interface ImageScriptOptions {
  /** Where vmlinuz and initrd are served, e.g. "http://10.0.0.1:8080/boot". */
  bootUrl: string;
  /** MAC the script was rendered for (shown in the script's comment). */
  mac: string;
  settings: BootSettings;
  kernelArgs?: string;
  attempts?: number;
  local?: LocalBootOptions;
}

/** Per-machine script: boot the Cascade kernel and initramfs with the settings pinned. */
export function renderImageScript(o: ImageScriptOptions): string {
  const base = checkMasterUrl(o.bootUrl, "boot URL");
  const args = checkKernelArgs(o.kernelArgs ?? DEFAULT_KERNEL_ARGS);
  const cascade = renderCascadeCmdline(o.settings);
  const attempts = o.attempts ?? 5;
  return `#!ipxe
# Cascade: image this machine (${o.mac}), rendered by netboot/ipxe.ts.
# BOOTIF tells /init which interface iPXE used; cascade.* are the client's settings.

set cascade-boot ${base}
set attempts:int32 ${attempts}
set try:int32 0
:retry
inc try
echo Cascade: loading the imaging system from \${cascade-boot} (attempt \${try}/\${attempts})
imgfree
kernel \${cascade-boot}/vmlinuz initrd=initrd ${args} BOOTIF=01-\${netX/mac:hexhyp} ${cascade} || goto failed_try
initrd --name initrd \${cascade-boot}/initrd || goto failed_try
boot || goto failed_try
:failed_try
iseq \${try} \${attempts} && goto failed ||
echo Cascade: loading failed, retrying in 5 seconds
sleep 5
goto retry

:failed
echo Cascade: cannot load the imaging system from \${cascade-boot} after \${try} attempts
echo Cascade: booting the local disk instead
goto local

${renderLocalSection(o.local ?? {})}`;
}

/** Why a PC is told to boot its own disk (shown on its screen and in the script). */
export type LocalReason = "imaged" | "not-enrolled";

const LOCAL_WHY: Record<LocalReason, string> = {
  imaged: "this PC is imaged with the current image",
  "not-enrolled": "this PC is not enrolled for imaging",
};

/** Per-machine script for a PC that boots its own disk (see LocalBootOptions for how). */
export function renderLocalBootScript(
  mac: string,
  reason: LocalReason = "imaged",
  local: LocalBootOptions = {},
): string {
  return `#!ipxe
# Cascade: ${mac} boots its local disk (rendered by netboot/ipxe.ts): ${LOCAL_WHY[reason]}.
# BIOS: sanboot drive 0x80; UEFI: the disk's own EFI loader, by volume label; else exit 1.

echo Cascade: ${LOCAL_WHY[reason]}: booting its local disk
goto local

${renderLocalSection(local)}`;
}
