// Helpers for the emulated netboot lab (scripts/lab_netboot.sh, scripts/test_netboot.sh):
//   netboot_lab.ts dnsmasq-conf SUBNET TFTP_DIR MASTER_URL   print a full-DHCP dnsmasq config
//   netboot_lab.ts serve DIR MASTER_URL IMAGE_ID TARGET AFTER  serve createBootApp at /boot on
//                                                              the master URL's host and port
// The server logs every request with the seconds since it started, so a test can time the boot.
import { Hono } from "hono";
import { createBootApp } from "../netboot/boot_routes.ts";
import { renderDnsmasqConf } from "../netboot/dnsmasq.ts";

const [cmd, ...args] = Deno.args;
const t0 = performance.now();
const stamp = () => ((performance.now() - t0) / 1000).toFixed(2);

if (cmd === "dnsmasq-conf") {
  const [subnet, tftp, master] = args;
  console.log(renderDnsmasqConf({
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
} else if (cmd === "serve") {
  const [dir, master, imageId, target, after] = args;
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
      shouldImage: () => true,
      onBootRequest: (mac, ip) => console.log(`[${stamp()}s] boot request mac=${mac} ip=${ip}`),
    }),
  );
  const url = new URL(master);
  Deno.serve(
    { hostname: url.hostname, port: Number(url.port || 80), onListen: () => {} },
    app.fetch,
  );
  console.log(`[${stamp()}s] serving ${dir} at ${master}/boot`);
} else {
  console.error(
    "usage: netboot_lab.ts dnsmasq-conf SUBNET TFTP MASTER | serve DIR MASTER ID TARGET AFTER",
  );
  Deno.exit(2);
}
