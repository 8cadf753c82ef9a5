// dnsmasq configuration for network boot. "proxy" mode runs beside the lab's own DHCP server
// (which keeps handing out addresses) and only tells PXE firmware what to boot; "dhcp" mode
// is a whole DHCP server for an isolated or emulated lab.
//
// Plain PXE firmware gets iPXE over TFTP (BIOS: undionly.kpxe, driving the NIC through the
// card's own PXE stack; UEFI: snponly.efi, through the firmware's network driver), and iPXE,
// which sends option 175, gets the first-stage script from the master over HTTP.

import { checkMasterUrl } from "./cmdline.ts";

export type DnsmasqMode =
  | {
    kind: "proxy";
    subnet: string;
    /** This machine's address on the lab network (the TFTP/PXE server iPXE is told of). */
    bootServer: string;
  }
  | {
    kind: "dhcp";
    rangeStart: string;
    rangeEnd: string;
    netmask: string;
    lease?: string;
    router?: string;
  };

export interface DnsmasqOptions {
  masterUrl: string;
  /** Folder holding undionly.kpxe, snponly.efi and ipxe.efi. */
  tftpRoot: string;
  mode: DnsmasqMode;
  /** Listen only here (recommended: the interface on the lab network). */
  interface?: string;
  /** Send IPv6 router adverts so iPXE does not sit 16 s in "Configuring" (emulated labs). */
  ipv6RouterAdverts?: boolean;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

function ipv4(value: string, what: string): string {
  if (!IPV4.test(value)) throw new TypeError(`Bad ${what} "${value}": expected an IPv4 address`);
  return value;
}

function plain(value: string, what: string): string {
  if (!/^[A-Za-z0-9._\/@:+-]+$/.test(value)) {
    throw new TypeError(`Bad ${what} "${value}": no spaces, commas or quotes allowed`);
  }
  return value;
}

export function firstStageUrl(masterUrl: string): string {
  return `${checkMasterUrl(masterUrl)}/boot/first-stage.ipxe`;
}

export function renderDnsmasqConf(o: DnsmasqOptions): string {
  const first = firstStageUrl(o.masterUrl);
  const lines: string[] = [
    "# Cascade network boot for dnsmasq (rendered by netboot/dnsmasq.ts).",
    "# Run: dnsmasq --keep-in-foreground --conf-file=THIS_FILE (needs root: ports 67, 69, 4011)",
    "",
    "# No DNS service: only DHCP/PXE and TFTP.",
    "port=0",
    "log-dhcp",
  ];
  if (o.interface) {
    lines.push(`interface=${plain(o.interface, "interface")}`, "bind-interfaces");
  }
  lines.push("");
  if (o.mode.kind === "proxy") {
    lines.push(
      "# Proxy DHCP: the lab's DHCP server still gives out addresses; this one only answers",
      "# PXE firmware (and iPXE) with what to boot. Any address of the lab's subnet works here.",
      `dhcp-range=${ipv4(o.mode.subnet, "proxy subnet")},proxy`,
      "# Tell PXE firmware to download the boot file at once (no multicast/server discovery).",
      "dhcp-option=vendor:PXEClient,6,2b",
    );
  } else {
    const m = o.mode;
    lines.push(
      "# Full DHCP server (isolated or emulated lab only: never beside another DHCP server).",
      `dhcp-range=${ipv4(m.rangeStart, "range start")},${ipv4(m.rangeEnd, "range end")},${
        ipv4(m.netmask, "netmask")
      },${plain(m.lease ?? "1h", "lease time")}`,
    );
    if (m.router) lines.push(`dhcp-option=option:router,${ipv4(m.router, "router")}`);
    lines.push(
      "# iPXE option 176 (no-pxedhcp) = 1: iPXE does not wait for a separate PXE server.",
      "dhcp-option=encap:175,176,1",
    );
  }
  lines.push(
    "",
    "# iPXE sends option 175: it gets the first-stage script; plain firmware gets iPXE first.",
    "dhcp-match=set:ipxe,175",
    "# Firmware architecture (option 93): 7 and 9 are x86-64 UEFI; 0 is BIOS.",
    "dhcp-match=set:efi64,option:client-arch,7",
    "dhcp-match=set:efi64,option:client-arch,9",
  );
  if (o.mode.kind === "proxy") {
    lines.push(
      "# Plain PXE firmware (no option 175): chain to iPXE over TFTP.",
      'pxe-service=tag:!ipxe,x86PC,"Cascade: loading iPXE",undionly.kpxe',
      'pxe-service=tag:!ipxe,BC_EFI,"Cascade: loading iPXE",snponly.efi',
      'pxe-service=tag:!ipxe,X86-64_EFI,"Cascade: loading iPXE",snponly.efi',
      "# iPXE: no pxe-service matches it, so it gets this boot filename: the first stage.",
      "# The server address matters: iPXE ignores a ProxyDHCP answer whose next-server",
      "# (siaddr) is empty, even when the file is an http:// URL.",
      `dhcp-boot=tag:ipxe,${first},,${ipv4(o.mode.bootServer, "boot server address")}`,
    );
  } else {
    lines.push(
      `dhcp-boot=tag:ipxe,${first}`,
      "dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi",
      "dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe",
    );
  }
  lines.push("", "# TFTP only for the small iPXE binaries; kernel and initrd go over HTTP.");
  lines.push("enable-tftp", `tftp-root=${plain(o.tftpRoot, "TFTP root")}`);
  if (o.ipv6RouterAdverts) {
    if (!o.interface) throw new TypeError("Cannot send IPv6 router adverts without an interface");
    lines.push(
      "",
      "# IPv6 router adverts: without them iPXE waits ~16 s for IPv6 autoconfiguration.",
      "enable-ra",
      `dhcp-range=::,constructor:${o.interface},ra-only`,
    );
  }
  return lines.join("\n") + "\n";
}
