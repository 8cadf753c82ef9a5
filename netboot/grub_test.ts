import assert from "node:assert/strict";
import { assertGolden } from "./golden.ts";
import {
  grubTftpDevice,
  renderGrubFirstStage,
  renderGrubImageConfig,
  renderGrubLocalConfig,
} from "./grub.ts";

const SETTINGS = {
  master: "http://10.0.0.1:8080",
  target: "/dev/nvme0n1",
  imageId: "0123456789abcdef".repeat(4),
  after: "reboot" as const,
};

/** grub-script-check (grub-common) parses a configuration as GRUB does. */
async function grubParses(text: string) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/grub.cfg`, text);
    const out = await new Deno.Command("grub-script-check", {
      args: [`${dir}/grub.cfg`],
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("GRUB first stage, image and local configurations match their golden files and parse", async () => {
  const first = renderGrubFirstStage("http://10.0.0.1:8080/");
  const image = renderGrubImageConfig({
    masterUrl: "http://10.0.0.1:8080",
    mac: "52-54-00-12-34-56",
    settings: SETTINGS,
    kernelArgs: "console=ttyS0,115200  console=tty0 loglevel=4 panic=10",
  });
  const local = renderGrubLocalConfig("52-54-00-12-34-56");
  const stranger = renderGrubLocalConfig("52-54-00-12-34-57", "not-enrolled", {
    efiLoaders: ["/EFI/debian/shimx64.efi"],
  });
  await assertGolden("grub-first-stage.cfg", first);
  await assertGolden("grub-image.cfg", image);
  await assertGolden("grub-local.cfg", local);
  await assertGolden("grub-local-not-enrolled.cfg", stranger);
  for (const text of [first, image, local, stranger]) await grubParses(text);
  assert.throws(
    () => renderGrubLocalConfig("52-54-00-12-34-57", "imaged", { efiLoaders: ["x; reboot"] }),
    /Bad EFI loader path "x; reboot"/,
  );
});

Deno.test("grubTftpDevice names the master's host and HTTP port number", () => {
  assert.equal(grubTftpDevice("http://10.0.0.1:8080"), "(tftp,10.0.0.1:8080)");
  assert.equal(grubTftpDevice("http://master.lab"), "(tftp,master.lab:80)");
  assert.throws(() => grubTftpDevice("http://[fd00::1]:8080"), /cannot reach an IPv6 address/);
  assert.throws(() => grubTftpDevice("ftp://x"), /must start with http:\/\/ or https:\/\//);
});

Deno.test("GRUB rendering refuses what would break out of the script", () => {
  const o = {
    masterUrl: "http://10.0.0.1:8080",
    mac: "52-54-00-12-34-56",
    settings: SETTINGS,
    kernelArgs: "quiet",
  };
  assert.throws(
    () => renderGrubImageConfig({ ...o, kernelArgs: "quiet; reboot" }),
    /Bad kernel arguments "quiet; reboot" for GRUB/,
  );
  assert.throws(
    () => renderGrubImageConfig({ ...o, kernelArgs: "x=${root}" }),
    /Bad kernel arguments/,
  );
  assert.throws(
    () => renderGrubImageConfig({ ...o, mac: "52:54:00:12:34:56" }),
    /Bad MAC "52:54:00:12:34:56" for GRUB/,
  );
});
