// PXELINUX configuration for labs that already boot through SYSLINUX's PXELINUX instead of
// iPXE. lpxelinux.0 fetches http:// URLs (fast); plain pxelinux.0 needs paths on its TFTP root.
// PXELINUX reads pxelinux.cfg/01-<mac> before pxelinux.cfg/default, so the master can pin one
// PC to "local" (already imaged) with a per-MAC file.

import { type BootSettings, renderCascadeCmdline } from "./cmdline.ts";
import { DEFAULT_KERNEL_ARGS } from "./ipxe.ts";

export interface PxelinuxOptions {
  /** URL (lpxelinux.0) or TFTP path of the kernel, e.g. "http://10.0.0.1:8080/boot/vmlinuz". */
  kernel: string;
  initrd: string;
  settings: BootSettings;
  kernelArgs?: string;
  /** Which entry boots by default: image this PC, or boot its local disk. */
  mode: "image" | "local";
}

function checkPath(value: string, what: string): string {
  if (!/^[A-Za-z0-9._\/:@+-]+$/.test(value)) {
    throw new TypeError(`Bad ${what} "${value}": no spaces, quotes or $ allowed`);
  }
  return value;
}

/** pxelinux.cfg/default (or pxelinux.cfg/01-aa-bb-cc-dd-ee-ff for one PC). */
export function renderPxelinuxConfig(o: PxelinuxOptions): string {
  const args = (o.kernelArgs ?? DEFAULT_KERNEL_ARGS).trim().replace(/\s+/g, " ");
  if (/[$"'\\\n]/.test(args)) throw new TypeError(`Bad kernel arguments "${args}"`);
  return `# Cascade PXELINUX configuration (rendered by netboot/pxelinux.ts).
# "cascade" images this PC; "local" boots its disk. INITRD adds initrd= to the command line,
# IPAPPEND 2 adds BOOTIF=01-<mac>.
DEFAULT ${o.mode === "image" ? "cascade" : "local"}
PROMPT 0
TIMEOUT 30
# A failed download reboots instead of leaving a prompt.
ONTIMEOUT ${o.mode === "image" ? "cascade" : "local"}
ONERROR reboot

LABEL cascade
  MENU LABEL Cascade: image this PC
  KERNEL ${checkPath(o.kernel, "kernel path")}
  INITRD ${checkPath(o.initrd, "initrd path")}
  APPEND ${args} ${renderCascadeCmdline(o.settings)}
  IPAPPEND 2

LABEL local
  MENU LABEL Boot the local disk
  LOCALBOOT 0

LABEL reboot
  MENU LABEL Reboot
  COM32 reboot.c32
`;
}
