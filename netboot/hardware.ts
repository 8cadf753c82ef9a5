// Which kernel modules the initramfs carries, by what the lab PC holds: the NICs and disks it
// boots from, and what a person at the PC needs to read and answer its messages (a USB
// keyboard). Names are module names ("-" and "_" alike); a name ending in "/" takes a whole
// folder of the kernel tree. Pure data: the build resolves these against modules.dep.

export interface ModuleSet {
  /** What the set is for (shown by the build). */
  what: string;
  modules: string[];
}

/** Every set the initramfs carries, in the order the build reports them. */
export const MODULE_SETS: readonly ModuleSet[] = [
  {
    what: "NICs on the board or a card",
    modules: [
      "virtio_pci",
      "virtio_net",
      "e1000",
      "e1000e",
      "igb",
      "igc",
      "ixgbe",
      "r8169",
      "tg3",
      "bnx2",
      "atlantic",
    ],
  },
  {
    // Thin laptops and mini PCs have no RJ45: a USB or USB-C adapter is their NIC.
    what: "USB network adapters",
    modules: ["r8152", "r8153_ecm", "cdc_ether", "cdc_ncm", "ax88179_178a", "asix", "usbnet"],
  },
  {
    // vmd: Intel Volume Management Device; with the firmware's SATA mode on "RAID On" (the
    // default on many new PCs) the NVMe disks sit behind it and show up only once it loads.
    what: "disks: SATA, NVMe (also behind Intel VMD), virtio, USB",
    modules: [
      "virtio_blk",
      "virtio_scsi",
      "ahci",
      "ata_piix",
      "nvme",
      "vmd",
      "sd_mod",
      "sr_mod",
      "usb_storage",
      "uas",
    ],
  },
  {
    what: "eMMC and SD cards (cheap laptops, thin clients)",
    modules: ["sdhci_pci", "sdhci_acpi", "mmc_block"],
  },
  {
    what: "USB controllers",
    modules: ["xhci_pci", "ehci_pci", "ohci_pci", "uhci_hcd"],
  },
  {
    // A PC without a PS/2 port reads its keyboard through these: without them the
    // "press Enter for a shell" prompt ignores the keyboard.
    what: "USB keyboards",
    modules: ["usbhid", "hid_generic", "hid_logitech_dj"],
  },
];

/** Every module name of every set. */
export function commonModules(): string[] {
  return MODULE_SETS.flatMap((s) => s.modules);
}

/** The rest of the kernel's ethernet and USB network drivers ("--nics all"). */
export const ALL_NIC_FOLDERS = ["kernel/drivers/net/ethernet/", "kernel/drivers/net/usb/"];

/**
 * Loaded by /init before it scans the hardware: drivers for devices that show up only after
 * the scan (USB devices enumerate a second or two after their controller's driver loads). A
 * driver loaded early binds such a device the moment it appears.
 */
export const EARLY_MODULES = [
  "usbhid",
  "hid_generic",
  "hid_logitech_dj",
  "r8152",
  "cdc_ether",
  // USB disks too: the target rule must see a USB stick to pass over it by name.
  "usb_storage",
  "uas",
  "sd_mod",
];
