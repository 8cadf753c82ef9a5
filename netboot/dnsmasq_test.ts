import assert from "node:assert/strict";
import { archTag, clientArchs, renderDnsmasqConf } from "./dnsmasq.ts";
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

Deno.test("proxy-DHCP dnsmasq config with the signed chain matches its golden file", async () => {
  await assertGolden(
    "dnsmasq-proxy-secureboot.conf",
    renderDnsmasqConf({
      masterUrl: "http://10.0.0.1:8080",
      tftpRoot: "/srv/cascade/tftp",
      mode: { kind: "proxy", subnet: "10.0.0.0", bootServer: "10.0.0.1" },
      interface: "eth0",
      secureBoot: true,
    }),
  );
});

Deno.test("full-DHCP dnsmasq config with the signed chain matches its golden file", async () => {
  await assertGolden(
    "dnsmasq-dhcp-secureboot.conf",
    renderDnsmasqConf({
      masterUrl: "http://10.77.0.1:8080",
      tftpRoot: "/tmp/lab/tftp",
      mode: {
        kind: "dhcp",
        rangeStart: "10.77.0.100",
        rangeEnd: "10.77.0.199",
        netmask: "255.255.255.0",
      },
      secureBoot: true,
    }),
  );
});

Deno.test("every client architecture a lab meets is named: a boot file or a refusal", () => {
  const table = clientArchs().map((
    a,
  ) => [a.code, archTag(a), a.boot.kind === "refused" ? "-" : a.boot.file]);
  assert.deepEqual(table, [
    [0, "arch-0", "undionly.kpxe"],
    [6, "cascade-refuses-32-bit-x86-uefi", "-"],
    [7, "arch-7", "snponly.efi"],
    [9, "arch-9", "snponly.efi"],
    [10, "cascade-refuses-32-bit-arm-uefi", "-"],
    [11, "cascade-refuses-arm64-uefi", "-"],
    [15, "cascade-refuses-32-bit-x86-uefi-http-boot", "-"],
    [16, "arch-16", "snponly.efi"],
    [19, "cascade-refuses-arm64-uefi-http-boot", "-"],
  ]);
  // The signed chain changes x64 UEFI PXE only; HTTP Boot stays iPXE (GRUB has no HTTP here).
  const sb = new Map(clientArchs(true).map((a) => [a.code, a.boot]));
  assert.deepEqual(sb.get(7), { kind: "tftp", file: "shimx64.efi" });
  assert.deepEqual(sb.get(9), { kind: "tftp", file: "shimx64.efi" });
  assert.deepEqual(sb.get(16), { kind: "http", file: "snponly.efi" });
  assert.deepEqual(sb.get(0), { kind: "tftp", file: "undionly.kpxe" });
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
    const modes = [
      { kind: "proxy" as const, subnet: "10.0.0.0", bootServer: "10.0.0.1" },
      { kind: "dhcp" as const, rangeStart: "10.0.0.2", rangeEnd: "10.0.0.9", netmask: "255.0.0.0" },
    ];
    for (const [mode, secureBoot] of modes.flatMap((m) => [[m, false], [m, true]] as const)) {
      const conf = `${dir}/d.conf`;
      await Deno.writeTextFile(
        conf,
        renderDnsmasqConf({ masterUrl: "http://m", tftpRoot: dir, mode, secureBoot }),
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

Deno.test("proxy mode refuses an HTTP Boot URL too long for the DHCP header's file field", () => {
  const proxy = (masterUrl: string) =>
    renderDnsmasqConf({
      masterUrl,
      tftpRoot: "/srv/cascade/tftp",
      mode: { kind: "proxy", subnet: "10.0.0.0", bootServer: "10.0.0.1" },
    });
  // 127 bytes with "/boot/snponly.efi" fits (the field's last byte is the NUL).
  const fits = `http://${"a".repeat(127 - "http:///boot/snponly.efi".length)}`;
  assert.match(
    proxy(fits),
    new RegExp(`^dhcp-boot=tag:!ipxe,tag:arch-16,${fits}/boot/snponly.efi$`, "m"),
  );
  const long = `${fits}b`;
  assert.throws(() => proxy(long), {
    name: "RangeError",
    message:
      `Cannot answer UEFI HTTP Boot in proxy mode with "${long}/boot/snponly.efi": the URL ` +
      "has more than 127 bytes (the DHCP header's file field); use a shorter master URL",
  });
});
