// iPXE scripts, in iPXE's house style: labelled retries with a counter, `|| goto` failure paths,
// a visible message and a reboot at the end (never a dead prompt in front of a class).
//
// Two stages: a fixed first stage (handed out by DHCP/TFTP, the same for every PC) gets an
// address and chains to the master, which answers each MAC with one of two scripts: "image"
// (boot the Cascade kernel and initramfs) or "local" (boot the disk: PCs keep netboot first in
// their boot order and must not re-image on every boot).

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

/** The first stage: DHCP with retries, then chain to the master's per-machine script. */
export function renderFirstStage(masterUrl: string, attempts = 5): string {
  const master = checkMasterUrl(masterUrl);
  return `#!ipxe
# Cascade first stage (rendered by netboot/ipxe.ts): get an address, then ask the master
# which script this machine runs (image it, or boot its local disk).

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
echo Cascade: the master did not answer, retrying in 5 seconds
sleep 5
goto retry_chain

:failed_dhcp
echo Cascade: no DHCP answer after \${try} attempts (is the cable in, is the DHCP server up?)
goto reboot
:failed_chain
echo Cascade: the master at \${cascade-master} did not answer after \${try} attempts
echo Cascade: is "cascade master" running and reachable from \${ip}?
:reboot
echo Cascade: rebooting in 30 seconds
sleep 30
reboot
`;
}

export interface ImageScriptOptions {
  /** Where vmlinuz and initrd are served, e.g. "http://10.0.0.1:8080/boot". */
  bootUrl: string;
  /** MAC the script was rendered for (shown in the script's comment). */
  mac: string;
  settings: BootSettings;
  kernelArgs?: string;
  attempts?: number;
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
echo Cascade: rebooting in 30 seconds
sleep 30
reboot
`;
}

/**
 * Per-machine script for a PC that is already imaged: boot its own disk.
 * BIOS: "sanboot --no-describe --drive 0x80" boots the first hard disk through INT 13 at once,
 * whatever the firmware's boot order (netboot stays first); "exit" there hands back to a BIOS
 * that on many PCs stops or loops into PXE again. UEFI: iPXE's sanboot needs a SAN target
 * (Debian's build cannot boot a local drive number), while "exit" returns to the firmware's
 * boot manager, which goes on to the next boot entry: the installed system.
 */
export function renderLocalBootScript(mac: string): string {
  return `#!ipxe
# Cascade: ${mac} is already imaged: boot its local disk (rendered by netboot/ipxe.ts).
# BIOS: sanboot boots drive 0x80 directly; UEFI: exit hands back to the firmware's next entry.

echo Cascade: this PC is already imaged, booting its local disk
iseq \${platform} efi && goto local_efi ||
sanboot --no-describe --drive 0x80 || goto failed
:local_efi
exit || goto failed

:failed
echo Cascade: cannot boot the local disk (drive 0x80): is the disk in and imaged?
echo Cascade: rebooting in 30 seconds
sleep 30
reboot
`;
}
