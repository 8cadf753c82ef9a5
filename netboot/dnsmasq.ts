// dnsmasq configuration for network boot. "proxy" mode runs beside the lab's own DHCP server
// (which keeps handing out addresses) and only tells PXE firmware what to boot; "dhcp" mode
// is a whole DHCP server for an isolated or emulated lab.
//
// Plain PXE firmware gets iPXE over TFTP (BIOS: undionly.kpxe, driving the NIC through the
// card's own PXE stack; UEFI: snponly.efi, through the firmware's network driver), and iPXE,
// which sends option 175, gets the first-stage script over TFTP from dnsmasq itself (the build
// writes it into the TFTP root): with the master's process down, iPXE still runs the first
// stage, which then boots the disk. Were the first stage on the master, iPXE would hand back to
// the firmware, and UEFI firmware walks its other network entries (PXEv6, HTTP) before the
// disk: 169 s to the disk in OVMF, 21 s through the first stage (master-down scenario). With the
// signed chain built (Secure Boot), x64 UEFI firmware gets Debian's shim instead, which loads
// Debian's signed GRUB (grubx64.efi), which asks the master what to boot (netboot/grub.ts).
//
// Each client architecture (DHCP option 93) a lab meets is named: it gets its boot file, or
// a tag "cascade-refuses-..." that log-dhcp prints, so the log says why a PC got nothing.
// UEFI HTTP Boot (arch 16, vendor class "HTTPClient") gets an http:// URL of snponly.efi on
// the master; in proxy mode through dhcp-pxe-vendor, which makes dnsmasq's proxy answer that
// vendor class too (by default it answers "PXEClient" alone).

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
  /** x64 UEFI PXE gets the signed chain (shimx64.efi -> grubx64.efi -> the kernel). */
  secureBoot?: boolean;
}

/** A client architecture (DHCP option 93, RFC 4578 and IANA's registry). */
export interface ClientArch {
  code: number;
  what: string;
  /** dnsmasq's name for it in pxe-service (proxy mode), when it has one. */
  csa?: string;
  /** What it boots: a TFTP file, the master's HTTP URL of a file, or nothing (refused). */
  boot:
    | { kind: "tftp"; file: string }
    | { kind: "http"; file: string }
    | { kind: "refused"; why: string };
}

/** Every architecture the configuration names, with what it boots. */
export function clientArchs(secureBoot = false): ClientArch[] {
  const x64 = secureBoot ? "shimx64.efi" : "snponly.efi";
  const noIpxe = (what: string) => `Debian's ipxe has no ${what} build`;
  return [
    { code: 0, what: "BIOS", csa: "x86PC", boot: { kind: "tftp", file: "undionly.kpxe" } },
    {
      code: 6,
      what: "32-bit x86 UEFI",
      csa: "IA32_EFI",
      boot: { kind: "refused", why: noIpxe("32-bit UEFI") },
    },
    { code: 7, what: "x64 UEFI", csa: "X86-64_EFI", boot: { kind: "tftp", file: x64 } },
    // 9 is EFI byte code on paper; x64 firmware of many vendors sends it.
    { code: 9, what: "x64 UEFI (sent as 9)", csa: "BC_EFI", boot: { kind: "tftp", file: x64 } },
    {
      code: 10,
      what: "32-bit ARM UEFI",
      csa: "ARM32_EFI",
      boot: { kind: "refused", why: noIpxe("ARM") },
    },
    {
      code: 11,
      what: "ARM64 UEFI",
      csa: "ARM64_EFI",
      boot: { kind: "refused", why: noIpxe("ARM64") },
    },
    {
      code: 15,
      what: "32-bit x86 UEFI HTTP Boot",
      boot: { kind: "refused", why: noIpxe("32-bit UEFI") },
    },
    // HTTP Boot gets iPXE (Secure Boot off): Debian's signed GRUB cannot fetch over HTTP.
    { code: 16, what: "x64 UEFI HTTP Boot", boot: { kind: "http", file: "snponly.efi" } },
    { code: 19, what: "ARM64 UEFI HTTP Boot", boot: { kind: "refused", why: noIpxe("ARM64") } },
  ];
}

const slug = (what: string) =>
  what.toLowerCase().replace(/\(.*\)/, "").trim().replace(/[^a-z0-9]+/g, "-");

/** The tag log-dhcp prints for an architecture. */
export function archTag(a: ClientArch): string {
  return a.boot.kind === "refused" ? `cascade-refuses-${slug(a.what)}` : `arch-${a.code}`;
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

/** The proxy answer carries the URL in the header's 128-byte file field (NUL-terminated). */
function proxyBootUrl(bootUrl: string, file: string): string {
  const url = `${bootUrl}/${file}`;
  if (new TextEncoder().encode(url).length > 127) {
    throw new RangeError(
      `Cannot answer UEFI HTTP Boot in proxy mode with "${url}": the URL has more than 127 bytes ` +
        "(the DHCP header's file field); use a shorter master URL",
    );
  }
  return url;
}

/** The first stage's name in the TFTP root (netboot/build_configs.ts writes it there). */
export const FIRST_STAGE_TFTP = "first-stage.ipxe";

export function renderDnsmasqConf(o: DnsmasqOptions): string {
  const first = FIRST_STAGE_TFTP;
  const bootUrl = `${checkMasterUrl(o.masterUrl)}/boot`;
  const archs = clientArchs(o.secureBoot);
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
    "# The first stage comes over TFTP from here, not from the master: a master that is down",
    '# then means "boot the disk" (the first stage does), not the firmware\'s next entries.',
    "dhcp-match=set:ipxe,175",
    "# Client architecture (option 93): each one a lab meets, with what it boots. A refused one",
    '# shows in the log as "tags: cascade-refuses-...".',
  );
  for (const a of archs) {
    const note = a.boot.kind === "refused" ? `: refused (${a.boot.why})` : "";
    lines.push(
      `# ${a.code}: ${a.what}${note}`,
      `dhcp-match=set:${archTag(a)},option:client-arch,${a.code}`,
    );
  }
  if (o.mode.kind === "proxy") {
    lines.push(
      "# Plain PXE firmware (no option 175) by architecture; a refused one is told to boot its",
      "# disk (a pxe-service without a file).",
    );
    for (const a of archs) {
      if (!a.csa) continue;
      lines.push(
        a.boot.kind === "tftp"
          ? `pxe-service=tag:!ipxe,${a.csa},"Cascade: loading ${a.boot.file}",${a.boot.file}`
          : `pxe-service=tag:!ipxe,${a.csa},"Cascade does not boot ${a.what}: booting the disk"`,
      );
    }
    lines.push(
      "# iPXE: no pxe-service matches it, so it gets this boot filename: the first stage, over",
      "# TFTP from this machine. The server address matters: iPXE ignores a ProxyDHCP answer",
      "# whose next-server (siaddr) is empty.",
      `dhcp-boot=tag:ipxe,${first},,${ipv4(o.mode.bootServer, "boot server address")}`,
      "# UEFI HTTP Boot (vendor class HTTPClient): proxy mode answers only the vendor classes",
      "# listed here (dnsmasq >= 2.83; the default is PXEClient alone). Such a client gets an",
      "# offer without an address that carries HTTPClient back and the URL in its file field",
      "# (a proxy offer, taken beside the lab's DHCP offer); no option 43, no port 4011.",
      "dhcp-pxe-vendor=PXEClient,HTTPClient",
    );
    for (const a of archs) {
      if (a.boot.kind === "http") {
        lines.push(`dhcp-boot=tag:!ipxe,tag:${archTag(a)},${proxyBootUrl(bootUrl, a.boot.file)}`);
      }
    }
  } else {
    lines.push(
      "# UEFI HTTP Boot: firmware sending vendor class HTTPClient takes only an answer that",
      "# carries the same class and an http:// boot file URL.",
      "dhcp-vendorclass=set:httpclient,HTTPClient",
      "dhcp-option-force=tag:httpclient,option:vendor-class,HTTPClient",
      `dhcp-boot=tag:ipxe,${first}`,
    );
    for (const a of archs) {
      if (a.boot.kind === "tftp") {
        lines.push(`dhcp-boot=tag:!ipxe,tag:${archTag(a)},${a.boot.file}`);
      } else if (a.boot.kind === "http") {
        lines.push(
          `dhcp-boot=tag:!ipxe,tag:httpclient,tag:${archTag(a)},${bootUrl}/${a.boot.file}`,
        );
      }
    }
  }
  lines.push("", "# TFTP only for the small boot programs; kernel and initrd go over HTTP.");
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
