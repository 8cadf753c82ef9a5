// What build-netboot is asked to do (BuildOptions) and what it reports when done (BuildReport).

import type { AfterAction } from "./cmdline.ts";

export interface BuildOptions {
  master: string;
  out: string;
  kernel: string;
  modules: string;
  busybox: string;
  target: string;
  after: AfterAction;
  kernelArgs: string;
  /** zstd level 1..19. */
  zstdLevel: number;
  /** "all": every ethernet and USB NIC driver of the kernel too; "common": hardware.ts's sets. */
  nics: "all" | "common";
  /** Firmware folders, searched in this order (an added folder first, the system's last). */
  firmwareDirs: string[];
  /** Subnet (or any address in it) for the proxy-DHCP dnsmasq config (default: pxeServer). */
  proxySubnet?: string;
  /** This machine's IPv4 address on the lab network (default: the master URL's, if an IP). */
  pxeServer?: string;
  /** TypeScript entry for the binary (default: the repo's cascade.ts). */
  entry: string;
  /** Seconds to let `deno compile` try before falling back to deno + bundle. */
  compileTimeout: number;
  ipxeDir: string;
  /** Where Debian's pxelinux and syslinux-common put their files (/usr/lib); none: skip. */
  syslinuxDir?: string;
  /** Debian's signed chain, unpacked by scripts/fetch_secureboot.sh (--secure-boot DIR). */
  secureBoot?: string;
  log: (line: string) => void;
}

export interface BuildReport {
  binaryMode: "compiled" | "bundle";
  kernelVersion: string;
  modules: number;
  missingModules: string[];
  firmware: number;
  missingFirmware: string[];
  cpioBytes: number;
  files: { path: string; bytes: number }[];
  seconds: number;
}
