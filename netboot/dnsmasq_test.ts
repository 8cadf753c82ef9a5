import assert from "node:assert/strict";
import { renderDnsmasqConf } from "./dnsmasq.ts";
import { assertGolden } from "./golden.ts";

Deno.test("proxy-DHCP dnsmasq config matches its golden file", async () => {
  await assertGolden(
    "dnsmasq-proxy.conf",
    renderDnsmasqConf({
      masterUrl: "http://10.0.0.1:8080",
      tftpRoot: "/srv/cascade/tftp",
      mode: { kind: "proxy", subnet: "10.0.0.0", bootServer: "10.0.0.1" },
      interface: "eth0",
    }),
  );
});

Deno.test("full-DHCP dnsmasq config (emulated lab) matches its golden file", async () => {
  await assertGolden(
    "dnsmasq-dhcp.conf",
    renderDnsmasqConf({
      masterUrl: "http://10.77.0.1:8080",
      tftpRoot: "/tmp/lab/tftp",
      mode: {
        kind: "dhcp",
        rangeStart: "10.77.0.100",
        rangeEnd: "10.77.0.199",
        netmask: "255.255.255.0",
      },
      interface: "br0",
      ipv6RouterAdverts: true,
    }),
  );
});

Deno.test("dnsmasq config is accepted by dnsmasq --test", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const mode of [
        { kind: "proxy" as const, subnet: "10.0.0.0", bootServer: "10.0.0.1" },
        {
          kind: "dhcp" as const,
          rangeStart: "10.0.0.2",
          rangeEnd: "10.0.0.9",
          netmask: "255.0.0.0",
        },
      ]
    ) {
      const conf = `${dir}/d.conf`;
      await Deno.writeTextFile(
        conf,
        renderDnsmasqConf({ masterUrl: "http://m", tftpRoot: dir, mode }),
      );
      const out = await new Deno.Command("dnsmasq", {
        args: ["--test", `--conf-file=${conf}`],
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dnsmasq rendering names the bad value", () => {
  assert.throws(
    () =>
      renderDnsmasqConf({
        masterUrl: "http://m",
        tftpRoot: "/t",
        mode: { kind: "proxy", subnet: "10.0.0", bootServer: "10.0.0.1" },
      }),
    /Bad proxy subnet "10.0.0": expected an IPv4 address/,
  );
  assert.throws(
    () =>
      renderDnsmasqConf({
        masterUrl: "http://m",
        tftpRoot: "/t",
        mode: { kind: "proxy", subnet: "10.0.0.0", bootServer: "10.0.0.1" },
        ipv6RouterAdverts: true,
      }),
    /without an interface/,
  );
});
