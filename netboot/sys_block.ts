// The disks a PC has, read from a /sys/block tree (the thin I/O side of target_rule.ts; tests
// point it at fixture trees). Sizes are in 512-byte sectors whatever the disk's block size.
import { join } from "node:path";
import type { DiskInfo } from "./target_rule.ts";

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return "";
  }
}

function kindOf(name: string): string {
  if (/^nvme/.test(name)) return "nvme";
  if (/^sd/.test(name)) return "sata/scsi";
  if (/^vd/.test(name)) return "virtio";
  if (/^hd/.test(name)) return "ide";
  if (/^mmcblk/.test(name)) return "mmc";
  return "other";
}

/** Every block device under `root` (default /sys/block) with what a target rule looks at. */
export function readSysBlock(root = "/sys/block"): DiskInfo[] {
  const disks: DiskInfo[] = [];
  for (const entry of Deno.readDirSync(root)) {
    const dir = join(root, entry.name);
    // /sys/block/sda -> ../devices/pci0000:00/.../usb2/2-1/.../block/sda: the bus is in the path.
    let real = dir;
    try {
      real = Deno.realPathSync(dir);
    } catch { /* a plain folder (fixtures): no bus */ }
    const sectors = Number(readText(join(dir, "size")) || "0");
    // SCSI/SATA/USB disks name their model in device/model; NVMe namespaces in device/model
    // of their controller (device is the controller); virtio has none.
    const model = readText(join(dir, "device", "model")) || readText(join(dir, "device", "name"));
    disks.push({
      name: entry.name,
      size: sectors * 512,
      removable: readText(join(dir, "removable")) === "1",
      usb: /\/usb\d+\//.test(real),
      readOnly: readText(join(dir, "ro")) === "1",
      kind: kindOf(entry.name),
      model: model.replace(/\s+/g, " "),
    });
  }
  return disks;
}
