import assert from "node:assert/strict";
import { Hono } from "hono";
import { type BootAppOptions, createBootApp, normalizeMac } from "./boot_routes.ts";
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
    shouldImage: (mac) => mac !== "52:54:00:00:00:02",
    target: "/dev/vda",
    after: "poweroff",
    kernelArgs: "console=ttyS0",
    ...over,
  };
}

Deno.test("normalizeMac accepts hyphens and colons, rejects the rest", () => {
  assert.equal(normalizeMac("52-54-00-AB-cd-ef"), "52:54:00:ab:cd:ef");
  assert.equal(normalizeMac("52:54:00:ab:cd:ef"), "52:54:00:ab:cd:ef");
  assert.equal(normalizeMac("525400abcdef"), "52:54:00:ab:cd:ef");
  for (const bad of ["", "52-54-00-ab-cd", "52-54:00-ab-cd-ef", "zz-54-00-ab-cd-ef"]) {
    assert.equal(normalizeMac(bad), null, bad);
  }
});

Deno.test("GET /ipxe renders the image or local-disk script per MAC and reports the boot", async () => {
  await withDir(async (dir) => {
    const seen: string[] = [];
    const boot = createBootApp(options(dir, { onBootRequest: (mac) => seen.push(mac) }));
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
    assert.deepEqual(seen, ["52:54:00:00:00:01", "52:54:00:00:00:02"]);

    const bad = await app.request("/boot/ipxe?mac=nope");
    assert.equal(bad.status, 400);
    assert.equal(await bad.text(), 'Bad MAC address "nope": expected ?mac=aa-bb-cc-dd-ee-ff\n');
    assert.equal((await app.request("/boot/ipxe")).status, 400);
    assert.equal(seen.length, 2);
  });
});

Deno.test("GET /first-stage.ipxe and /pxelinux.cfg/* serve the rendered configs", async () => {
  await withDir(async (dir) => {
    const app = createBootApp(options(dir));
    const first = await app.request("/first-stage.ipxe");
    assert.equal(await first.text(), renderFirstStage("http://10.0.0.1:8080"));
    const local = await (await app.request("/pxelinux.cfg/01-52-54-00-00-00-02")).text();
    assert.match(local, /^DEFAULT local$/m);
    const def = await (await app.request("/pxelinux.cfg/default")).text();
    assert.match(def, /^DEFAULT cascade$/m);
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

Deno.test("createBootApp takes kernel arguments from build.json and refuses bad settings", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/build.json`, JSON.stringify({ kernelArgs: "quiet" }));
    const app = createBootApp(options(dir, { kernelArgs: undefined }));
    const text = await (await app.request("/ipxe?mac=52-54-00-00-00-01")).text();
    assert.match(text, /initrd=initrd quiet BOOTIF=/);
    assert.throws(() => createBootApp(options(dir, { imageId: "abc" })), /Bad image id "abc"/);
    assert.throws(() => createBootApp(options(dir, { after: "halt" })), /Bad after action/);
    assert.throws(() => createBootApp(options(dir, { target: "sda" })), /Bad target disk "sda"/);
  });
});
