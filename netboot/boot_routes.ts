// The master's /boot routes: per-machine iPXE scripts (image this PC, or boot its disk), the
// first stage, a PXELINUX config per MAC, and the kernel and initramfs streamed from the build
// output. Mounted by the master with `app.route("/boot", createBootApp(...))`.

import { Hono } from "hono";
import {
  type AfterAction,
  type BootSettings,
  checkAfter,
  checkImageId,
  checkMasterUrl,
  checkTarget,
} from "./cmdline.ts";
import {
  DEFAULT_KERNEL_ARGS,
  renderFirstStage,
  renderImageScript,
  renderLocalBootScript,
} from "./ipxe.ts";
import { renderPxelinuxConfig } from "./pxelinux.ts";

export interface BootAppOptions {
  /** Build output of `cascade build-netboot` (holds vmlinuz, initrd, build.json). */
  dir: string;
  /** The master's base URL as PCs reach it, e.g. "http://10.0.0.1:8080". */
  masterUrl: string;
  /** The image PCs must accept (manifest SHA-256), pinned on their kernel command line. */
  imageId: string;
  /** true: image this PC; false: boot its local disk. `mac` is "aa:bb:cc:dd:ee:ff". */
  shouldImage(mac: string): boolean;
  /** Called for each per-machine script request (the PC is booting). */
  onBootRequest?(mac: string, ip?: string): void;
  target: string;
  after: string;
  /** Kernel arguments besides cascade.*; default: the build's (build.json), else the default. */
  kernelArgs?: string;
}

/** "52-54-00-AB-cd-ef" or "52:54:00:ab:cd:ef" -> "52:54:00:ab:cd:ef"; null when not a MAC. */
export function normalizeMac(text: string): string | null {
  const m = /^([0-9a-fA-F]{2})([-:]?)([0-9a-fA-F]{2})(?:\2([0-9a-fA-F]{2})){4}$/.exec(text);
  if (!m) return null;
  const hex = text.replace(/[-:]/g, "").toLowerCase();
  return hex.match(/../g)!.join(":");
}

const FILES = { vmlinuz: "kernel", initrd: "initramfs" } as const;

function readBuildKernelArgs(dir: string): string | undefined {
  try {
    const info = JSON.parse(Deno.readTextFileSync(`${dir}/build.json`));
    return typeof info.kernelArgs === "string" ? info.kernelArgs : undefined;
  } catch {
    return undefined; // no build yet: the file routes will say so
  }
}

export function createBootApp(opts: BootAppOptions): Hono {
  const master = checkMasterUrl(opts.masterUrl);
  const bootUrl = `${master}/boot`;
  const settings: BootSettings = {
    master,
    target: checkTarget(opts.target),
    imageId: checkImageId(opts.imageId),
    after: checkAfter(opts.after) as AfterAction,
  };
  const kernelArgs = opts.kernelArgs ?? readBuildKernelArgs(opts.dir) ?? DEFAULT_KERNEL_ARGS;
  const firstStage = renderFirstStage(master);
  // Render once up front so a bad setting fails at start-up, not at the first PC's boot.
  renderImageScript({ bootUrl, mac: "check", settings, kernelArgs });

  const app = new Hono();
  const ipxe = (text: string) =>
    new Response(text, { headers: { "content-type": "text/plain; charset=utf-8" } });

  app.get("/first-stage.ipxe", () => ipxe(firstStage));

  app.get("/ipxe", (c) => {
    const raw = c.req.query("mac") ?? "";
    const mac = normalizeMac(raw);
    if (!mac) {
      return c.text(`Bad MAC address "${raw}": expected ?mac=aa-bb-cc-dd-ee-ff\n`, 400);
    }
    const info = c.env as { remoteAddr?: { hostname?: string } } | undefined;
    opts.onBootRequest?.(mac, info?.remoteAddr?.hostname);
    const hyphens = mac.replaceAll(":", "-");
    return ipxe(
      opts.shouldImage(mac)
        ? renderImageScript({ bootUrl, mac: hyphens, settings, kernelArgs })
        : renderLocalBootScript(hyphens),
    );
  });

  // PXELINUX asks for pxelinux.cfg/01-<mac> first, then falls back towards "default".
  app.get("/pxelinux.cfg/:name", (c) => {
    const name = c.req.param("name");
    const mac = name.startsWith("01-") ? normalizeMac(name.slice(3)) : null;
    if (name !== "default" && !mac) return c.text(`No PXELINUX config "${name}"\n`, 404);
    if (mac) opts.onBootRequest?.(mac);
    return ipxe(renderPxelinuxConfig({
      kernel: `${bootUrl}/vmlinuz`,
      initrd: `${bootUrl}/initrd`,
      settings,
      kernelArgs,
      mode: !mac || opts.shouldImage(mac) ? "image" : "local",
    }));
  });

  for (const [name, what] of Object.entries(FILES)) {
    app.get(`/${name}`, async (c) => {
      const path = `${opts.dir}/${name}`;
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
        return c.text(
          `No ${what} at "${path}": build it with ` +
            `"deno task build-netboot --master ${master} --out ${opts.dir}"\n`,
          404,
        );
      }
      const { size } = await file.stat();
      return new Response(file.readable, {
        headers: { "content-type": "application/octet-stream", "content-length": String(size) },
      });
    });
  }
  return app;
}
