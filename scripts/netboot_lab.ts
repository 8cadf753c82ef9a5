// Helpers for the emulated netboot lab (scripts/lab_netboot.sh, scripts/test_netboot.sh):
//   netboot_lab.ts dnsmasq-conf SUBNET TFTP_DIR MASTER_URL [secure-boot]
//       print a full-DHCP dnsmasq config (secure-boot: x64 UEFI PXE gets the signed chain)
//   netboot_lab.ts dnsmasq-proxy-conf SUBNET TFTP_DIR MASTER_URL  the same in proxy-DHCP mode
//   netboot_lab.ts dnsmasq-pxelinux-conf SUBNET TFTP_DIR MASTER_URL  a lab's PXELINUX DHCP:
//       lpxelinux.0 over TFTP, option 210 (path prefix) = the master's /boot/
//   netboot_lab.ts serve DIR MASTER_URL IMAGE_ID TARGET AFTER [LOCAL_MACS]
//       serve createBootApp at /boot on the master URL's host and port, over HTTP and TFTP
//       (the UDP port of the same number, as the master does); LOCAL_MACS (comma separated,
//       aa:bb:..) get the local-disk script, every other PC the image script
//   netboot_lab.ts boot-sector FILE   write a BIOS boot sector printing CASCADE-LOCAL-DISK-BOOTED
// The server logs every request with the seconds since it started, so a test can time the boot.
import { Hono } from "hono";
import { createBootApp, serveTftp } from "../netboot/mod.ts";
import { renderDnsmasqConf } from "../netboot/mod.ts";

const [cmd, ...args] = Deno.args;
const t0 = performance.now();
const stamp = () => ((performance.now() - t0) / 1000).toFixed(2);

if (cmd === "dnsmasq-conf") {
  const [subnet, tftp, master, flag] = args;
  console.log(renderDnsmasqConf({
    secureBoot: flag === "secure-boot",
    masterUrl: master,
    tftpRoot: tftp,
    mode: {
      kind: "dhcp",
      rangeStart: `${subnet}.100`,
      rangeEnd: `${subnet}.199`,
      netmask: "255.255.255.0",
      router: `${subnet}.1`,
    },
    interface: "br0",
    ipv6RouterAdverts: true,
  }));
} else if (cmd === "dnsmasq-pxelinux-conf") {
  // A lab that boots through PXELINUX already: its DHCP hands out lpxelinux.0 and the path
  // prefix (option 210) of the master's /boot/, so the rest comes over HTTP from the master.
  const [subnet, tftp, master] = args;
  console.log([
    "port=0",
    "log-dhcp",
    "interface=br0",
    "bind-interfaces",
    `dhcp-range=${subnet}.100,${subnet}.199,255.255.255.0,1h`,
    `dhcp-option=option:router,${subnet}.1`,
    "dhcp-boot=lpxelinux.0",
    `dhcp-option-force=210,${master}/boot/`,
    // PXELINUX's reboot time (option 211, seconds): a failed download ends in "Boot failed:
    // press a key to retry, or wait for reset", 300 s by default; 30 s retries the boot soon.
    "dhcp-option-force=211,30i",
    "enable-tftp",
    `tftp-root=${tftp}`,
  ].join("\n"));
} else if (cmd === "dnsmasq-proxy-conf") {
  const [subnet, tftp, master] = args;
  console.log(renderDnsmasqConf({
    masterUrl: master,
    tftpRoot: tftp,
    mode: { kind: "proxy", subnet: `${subnet}.0`, bootServer: `${subnet}.1` },
    interface: "br0",
    ipv6RouterAdverts: true,
  }));
} else if (cmd === "boot-sector") {
  // xor ax,ax; mov ds,ax; xor bx,bx; mov si,msg; mov ah,0Eh; l: lodsb; or al,al; jz h;
  // int 10h; jmp l; h: hlt; jmp h; msg: ...  (BIOS teletype; SeaBIOS mirrors it to serial)
  const code = "31c08ed831dbbe177cb40eac08c07404cd10ebf7f4ebfd".match(/../g)!.map((h) =>
    parseInt(h, 16)
  );
  const sector = new Uint8Array(512);
  sector.set(code);
  sector.set(new TextEncoder().encode("CASCADE-LOCAL-DISK-BOOTED\r\n\0"), 0x17);
  sector.set([0x55, 0xaa], 510);
  const f = await Deno.open(args[0], { write: true });
  await f.write(sector);
  f.close();
} else if (cmd === "serve") {
  const [dir, master, imageId, target, after, localMacs = ""] = args;
  const local = new Set(localMacs.split(",").filter(Boolean));
  const app = new Hono();
  app.use(async (c, next) => {
    console.log(`[${stamp()}s] ${c.req.method} ${c.req.path}${new URL(c.req.url).search}`);
    await next();
    console.log(`[${stamp()}s] -> ${c.res.status}`);
  });
  app.route(
    "/boot",
    createBootApp({
      dir,
      masterUrl: master,
      imageId,
      target,
      after,
      decide: (mac) => local.has(mac) ? { action: "local", reason: "imaged" } : { action: "image" },
      onBootRequest: (mac, ip, d) =>
        console.log(`[${stamp()}s] boot request mac=${mac} ip=${ip} answer=${d.action}`),
    }),
  );
  const url = new URL(master);
  Deno.serve(
    { hostname: url.hostname, port: Number(url.port || 80), onListen: () => {} },
    app.fetch,
  );
  await serveTftp({
    hostname: url.hostname,
    port: Number(url.port || 80),
    fetch: (path, ip) =>
      Promise.resolve(
        app.fetch(new Request(`http://tftp${path}`), {
          remoteAddr: { hostname: ip, port: 0, transport: "udp" },
        }),
      ),
    log: (event, fields) => console.log(`[${stamp()}s] ${event} ${JSON.stringify(fields)}`),
  });
  console.log(`[${stamp()}s] serving ${dir} at ${master}/boot`);
} else {
  console.error(
    "usage: netboot_lab.ts dnsmasq-conf SUBNET TFTP MASTER | serve DIR MASTER ID TARGET AFTER",
  );
  Deno.exit(2);
}
