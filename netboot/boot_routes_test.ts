import assert from "node:assert/strict";
import { renderGrubImageConfig, renderGrubLocalConfig } from "./grub.ts";
import { Hono } from "hono";
import { renderBuildInfo, sampleBuildInfo } from "./testkit.ts";
import { type BootAppOptions, createBootApp } from "./boot_routes.ts";
import { renderFirstStage, renderImageScript, renderLocalBootScript } from "./ipxe.ts";

const ID = "c0".repeat(32);

async function withDir(f: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function options(dir: string, over: Partial<BootAppOptions> = {}): BootAppOptions {
  return {
    dir,
    masterUrl: "http://10.0.0.1:8080",
    imageId: ID,
    decide: (mac) =>
      mac === "52:54:00:00:00:02"
        ? { action: "local", reason: "imaged" }
        : mac === "52:54:00:00:00:03"
        ? { action: "local", reason: "not-enrolled" }
        : mac === "52:54:00:00:00:04"
        ? { action: "image", group: "lab", target: "auto,usb", after: "reboot" }
        : { action: "image" },
    finishStep: (mac) =>
      mac === "52:54:00:00:00:04"
        ? { group: "lab", name: "hostname.sh", script: "echo hi\n", env: { A: "1" } }
        : undefined,
    target: "/dev/vda",
    after: "poweroff",
    kernelArgs: "console=ttyS0",
    ...over,
  };
}

Deno.test("GET /ipxe renders the image or local-disk script per MAC and reports the boot", async () => {
  await withDir(async (dir) => {
    const seen: string[] = [];
    const boot = createBootApp(
      options(dir, { onBootRequest: (mac, _ip, d) => seen.push(`${mac} ${d.action}`) }),
    );
    const app = new Hono().route("/boot", boot); // as the master mounts it

    const img = await app.request("/boot/ipxe?mac=52-54-00-00-00-01");
    assert.equal(img.status, 200);
    assert.match(img.headers.get("content-type")!, /^text\/plain/);
    assert.equal(
      await img.text(),
      renderImageScript({
        bootUrl: "http://10.0.0.1:8080/boot",
        mac: "52-54-00-00-00-01",
        kernelArgs: "console=ttyS0",
        settings: {
          master: "http://10.0.0.1:8080",
          target: "/dev/vda",
          imageId: ID,
          after: "poweroff",
        },
      }),
    );
    const local = await app.request("/boot/ipxe?mac=52:54:00:00:00:02");
    assert.equal(await local.text(), renderLocalBootScript("52-54-00-00-00-02"));
    const stranger = await app.request("/boot/ipxe?mac=52:54:00:00:00:03");
    assert.equal(
      await stranger.text(),
      renderLocalBootScript("52-54-00-00-00-03", "not-enrolled"),
    );
    // A group's target rule and after action replace the build's.
    const grouped = await (await app.request("/boot/ipxe?mac=52:54:00:00:00:04")).text();
    assert.match(grouped, / cascade\.target=auto,usb cascade\.after=reboot /);
    assert.deepEqual(seen, [
      "52:54:00:00:00:01 image",
      "52:54:00:00:00:02 local",
      "52:54:00:00:00:03 local",
      "52:54:00:00:00:04 image",
    ]);

    const bad = await app.request("/boot/ipxe?mac=nope");
    assert.equal(bad.status, 400);
    assert.equal(await bad.text(), 'Bad MAC address "nope": expected ?mac=aa-bb-cc-dd-ee-ff\n');
    assert.equal((await app.request("/boot/ipxe")).status, 400);
    assert.equal(seen.length, 4);
  });
});

Deno.test("GET /finish serves a PC's finishing step as JSON, 204 when it has none", async () => {
  await withDir(async (dir) => {
    const app = createBootApp(options(dir));
    const step = await app.request("/finish?mac=52-54-00-00-00-04");
    assert.equal(step.status, 200);
    assert.deepEqual(await step.json(), {
      group: "lab",
      name: "hostname.sh",
      script: "echo hi\n",
      env: { A: "1" },
    });
    assert.equal((await app.request("/finish?mac=52-54-00-00-00-01")).status, 204);
    assert.equal((await app.request("/finish?mac=x")).status, 400);
  });
});

Deno.test("GET /first-stage.ipxe and /pxelinux.cfg/* serve the rendered configs", async () => {
  await withDir(async (dir) => {
    const app = createBootApp(options(dir));
    const first = await app.request("/first-stage.ipxe");
    assert.equal(await first.text(), renderFirstStage("http://10.0.0.1:8080"));
    const local = await (await app.request("/pxelinux.cfg/01-52-54-00-00-00-02")).text();
    assert.match(local, /^DEFAULT local$/m);
    // The shared default cannot tell PCs apart: it boots the local disk (enrolment).
    const def = await (await app.request("/pxelinux.cfg/default")).text();
    assert.match(def, /^DEFAULT local$/m);
    const img = await (await app.request("/pxelinux.cfg/01-52-54-00-00-00-01")).text();
    assert.match(img, /^DEFAULT cascade$/m);
    assert.match(def, /KERNEL http:\/\/10\.0\.0\.1:8080\/boot\/vmlinuz/);
    assert.equal((await app.request("/pxelinux.cfg/C0A80001")).status, 404);
  });
});

Deno.test("GET /vmlinuz and /initrd stream the build's files, 404 names the missing one", async () => {
  await withDir(async (dir) => {
    const app = createBootApp(options(dir));
    const missing = await app.request("/initrd");
    assert.equal(missing.status, 404);
    assert.equal(
      await missing.text(),
      `No initramfs at "${dir}/initrd": build it with ` +
        `"deno task build-netboot --master http://10.0.0.1:8080 --out ${dir}"\n`,
    );
    const bytes = crypto.getRandomValues(new Uint8Array(60_000));
    await Deno.writeFile(`${dir}/initrd`, bytes);
    await Deno.writeTextFile(`${dir}/vmlinuz`, "kernel");
    const res = await app.request("/initrd");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-length"), "60000");
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), bytes);
    assert.equal(await (await app.request("/vmlinuz")).text(), "kernel");
  });
});

Deno.test("GET /grub/:mac renders the same decision as a GRUB configuration", async () => {
  await withDir(async (dir) => {
    const seen: string[] = [];
    const app = new Hono().route(
      "/boot",
      createBootApp(
        options(dir, { onBootRequest: (mac, _ip, d) => seen.push(`${mac} ${d.action}`) }),
      ),
    );
    // GRUB's ${net_default_mac} has colons.
    const img = await (await app.request("/boot/grub/52:54:00:00:00:01")).text();
    assert.equal(
      img,
      renderGrubImageConfig({
        masterUrl: "http://10.0.0.1:8080",
        mac: "52-54-00-00-00-01",
        settings: {
          master: "http://10.0.0.1:8080",
          target: "/dev/vda",
          imageId: ID,
          after: "poweroff",
        },
        kernelArgs: "console=ttyS0",
      }),
    );
    // A group's target and after action reach the command line, as on the iPXE path.
    const grouped = await (await app.request("/boot/grub/52:54:00:00:00:04")).text();
    assert.match(grouped, /cascade\.target=auto,usb cascade\.after=reboot;/);
    assert.equal(
      await (await app.request("/boot/grub/52:54:00:00:00:02")).text(),
      renderGrubLocalConfig("52-54-00-00-00-02", "imaged"),
    );
    assert.equal(
      await (await app.request("/boot/grub/52:54:00:00:00:03")).text(),
      renderGrubLocalConfig("52-54-00-00-00-03", "not-enrolled"),
    );
    const bad = await app.request("/boot/grub/zz");
    assert.equal(bad.status, 400);
    assert.equal(await bad.text(), 'Bad MAC address "zz": expected grub/aa:bb:cc:dd:ee:ff\n');
    assert.deepEqual(seen, [
      "52:54:00:00:00:01 image",
      "52:54:00:00:00:04 image",
      "52:54:00:00:00:02 local",
      "52:54:00:00:00:03 local",
    ]);
  });
});

Deno.test("GET /snponly.efi serves the TFTP boot program over HTTP too (UEFI HTTP Boot)", async () => {
  await withDir(async (dir) => {
    const app = createBootApp(options(dir));
    const missing = await app.request("/shimx64.efi");
    assert.equal(missing.status, 404);
    assert.match(
      await missing.text(),
      /^No Secure Boot shim \(build with --secure-boot\) at ".*\/tftp\/shimx64.efi"/,
    );
    await Deno.mkdir(`${dir}/tftp`);
    await Deno.writeTextFile(`${dir}/tftp/snponly.efi`, "MZ snponly");
    const res = await app.request("/snponly.efi");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-length"), "10");
    assert.equal(await res.text(), "MZ snponly");
  });
});

Deno.test("createBootApp takes kernel arguments from build.json and refuses bad settings", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/build.json`,
      renderBuildInfo(sampleBuildInfo({ kernelArgs: "quiet" })),
    );
    const app = createBootApp(options(dir, { kernelArgs: undefined }));
    const text = await (await app.request("/ipxe?mac=52-54-00-00-00-01")).text();
    assert.match(text, /initrd=initrd quiet BOOTIF=/);
    assert.throws(() => createBootApp(options(dir, { imageId: "abc" })), /Bad image id "abc"/);
    assert.throws(() => createBootApp(options(dir, { after: "halt" })), /Bad after action/);
    assert.throws(() => createBootApp(options(dir, { target: "sda" })), /Bad target disk "sda"/);
    assert.throws(() => createBootApp(options(dir, { target: "/etc/x" })), /Bad target disk/);
  });
});
