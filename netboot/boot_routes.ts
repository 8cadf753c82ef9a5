// The master's /boot routes: per-machine iPXE scripts (image this PC, or boot its disk), the
// first stage, a PXELINUX config per MAC, each PC's finishing step, and the kernel and
// initramfs streamed from the build output. Mounted by the master with
// `app.route("/boot", createBootApp(...))`. What a PC boots is the master's decision
// (`decide`): these routes only render it.

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
  type LocalBootOptions,
  type LocalReason,
  renderFirstStage,
  renderImageScript,
  renderLocalBootScript,
} from "./ipxe.ts";
import { parseBuildInfo } from "./build_info.ts";
import { normalizeMac } from "./mac.ts";
import { renderPxelinuxConfig } from "./pxelinux.ts";
import { renderGrubImageConfig, renderGrubLocalConfig } from "./grub.ts";

export interface BootAppOptions {
  /** Build output of `cascade build-netboot` (holds vmlinuz, initrd, build.json). */
  dir: string;
  /** The master's base URL as PCs reach it, e.g. "http://10.0.0.1:8080". */
  masterUrl: string;
  /** The image PCs must accept (manifest SHA-256), pinned on their kernel command line. */
  imageId: string;
  /** What this PC boots; `mac` is "aa:bb:cc:dd:ee:ff". Called once per boot request. */
  decide(mac: string, ip?: string): BootDecision;
  /** Called for each per-machine request with the answer given (the PC is booting). */
  onBootRequest?(mac: string, ip: string | undefined, decision: BootDecision): void;
  /** The finishing step of this PC (its group's), if it has one. */
  finishStep?(mac: string): FinishStep | undefined;
  /** Default target (a device path or a target rule) and after action; groups override them. */
  target: string;
  after: string;
  /** How the local disk is booted on UEFI (volume labels, loaders). */
  local?: LocalBootOptions;
  /** Kernel arguments besides cascade.*; default: the build's (build.json), else the default. */
  kernelArgs?: string;
}

/** The master's answer to one PC's boot request. */
export type BootDecision =
  | {
    action: "image";
    /** The PC's group, when a groups file enrolled it. */
    group?: string;
    /** The group's target (device path or target rule) and after action, if it sets them. */
    target?: string;
    after?: AfterAction;
    /** The image it gets (a master serving several images), when not the default one. */
    imageId?: string;
  }
  | { action: "local"; reason: LocalReason };

/** A finishing step served to one PC: a shell script and the settings for its environment. */
export interface FinishStep {
  group: string;
  /** Name of the step (its file name), for the dashboard and the history. */
  name: string;
  script: string;
  /** Extra environment (the group's settings, the PC's name). */
  env: Record<string, string>;
}

function remoteIp(env: unknown): string | undefined {
  return (env as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr?.hostname;
}

/** Files served under /boot/: route name -> [path in the build folder, what it is]. The .efi
 * boot programs are the TFTP ones, also over HTTP for UEFI HTTP Boot (which fetches a URL). */
const FILES: Record<string, [string, string]> = {
  vmlinuz: ["vmlinuz", "kernel"],
  initrd: ["initrd", "initramfs"],
  "snponly.efi": ["tftp/snponly.efi", "iPXE for UEFI"],
  "ipxe.efi": ["tftp/ipxe.efi", "iPXE for UEFI"],
  "shimx64.efi": ["tftp/shimx64.efi", "Secure Boot shim (build with --secure-boot)"],
  "grubx64.efi": ["tftp/grubx64.efi", "signed GRUB (build with --secure-boot)"],
  // PXELINUX with DHCP option 210 = MASTER/boot/ fetches its modules from here.
  "ldlinux.c32": ["tftp/ldlinux.c32", "PXELINUX module (apt-get install syslinux-common)"],
  "reboot.c32": ["tftp/reboot.c32", "PXELINUX module (apt-get install syslinux-common)"],
};

function readBuildKernelArgs(dir: string): string | undefined {
  const path = `${dir}/build.json`;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined; // no build yet: the file routes say so
    throw err;
  }
  return parseBuildInfo(text, path).kernelArgs;
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
  const local = opts.local ?? {};
  const firstStage = renderFirstStage(master, undefined, local);
  // Render once up front so a bad setting fails at start-up, not at the first PC's boot.
  renderImageScript({ bootUrl, mac: "check", settings, kernelArgs, local });
  const settingsFor = (d: BootDecision & { action: "image" }): BootSettings => ({
    ...settings,
    ...(d.target !== undefined ? { target: checkTarget(d.target) } : {}),
    ...(d.after !== undefined ? { after: checkAfter(d.after) } : {}),
    ...(d.imageId !== undefined ? { imageId: checkImageId(d.imageId) } : {}),
  });

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
    const ip = remoteIp(c.env);
    const decision = opts.decide(mac, ip);
    opts.onBootRequest?.(mac, ip, decision);
    const hyphens = mac.replaceAll(":", "-");
    return ipxe(
      decision.action === "image"
        ? renderImageScript({
          bootUrl,
          mac: hyphens,
          settings: settingsFor(decision),
          kernelArgs,
          local,
        })
        : renderLocalBootScript(hyphens, decision.reason, local),
    );
  });

  // Debian's signed GRUB (Secure Boot chain) asks for grub/<mac> over TFTP (the master's TFTP
  // side maps it here): the same decision, rendered as a GRUB configuration.
  app.get("/grub/:mac", (c) => {
    const raw = c.req.param("mac");
    const mac = normalizeMac(raw);
    if (!mac) return c.text(`Bad MAC address "${raw}": expected grub/aa:bb:cc:dd:ee:ff\n`, 400);
    const ip = remoteIp(c.env);
    const decision = opts.decide(mac, ip);
    opts.onBootRequest?.(mac, ip, decision);
    const hyphens = mac.replaceAll(":", "-");
    return ipxe(
      decision.action === "image"
        ? renderGrubImageConfig({
          masterUrl: master,
          mac: hyphens,
          settings: settingsFor(decision),
          kernelArgs,
        })
        : renderGrubLocalConfig(hyphens, decision.reason, local),
    );
  });

  // The finishing step the client runs after its disk verified: JSON, 204 when it has none.
  app.get("/finish", (c) => {
    const raw = c.req.query("mac") ?? "";
    const mac = normalizeMac(raw);
    if (!mac) {
      return c.text(`Bad MAC address "${raw}": expected ?mac=aa-bb-cc-dd-ee-ff\n`, 400);
    }
    const step = opts.finishStep?.(mac);
    return step ? c.json(step) : c.body(null, 204);
  });

  // PXELINUX asks for pxelinux.cfg/01-<mac> first, then falls back towards "default".
  app.get("/pxelinux.cfg/:name", (c) => {
    const name = c.req.param("name");
    const mac = name.startsWith("01-") ? normalizeMac(name.slice(3)) : null;
    if (name !== "default" && !mac) return c.text(`No PXELINUX config "${name}"\n`, 404);
    // The shared default file cannot know the PC: it boots the local disk.
    const ip = remoteIp(c.env);
    const decision: BootDecision = mac
      ? opts.decide(mac, ip)
      : { action: "local", reason: "not-enrolled" };
    if (mac) opts.onBootRequest?.(mac, ip, decision);
    return ipxe(renderPxelinuxConfig({
      kernel: `${bootUrl}/vmlinuz`,
      initrd: `${bootUrl}/initrd`,
      settings: decision.action === "image" ? settingsFor(decision) : settings,
      kernelArgs,
      mode: decision.action,
    }));
  });

  for (const [name, [rel, what]] of Object.entries(FILES)) {
    app.get(`/${name}`, async (c) => {
      const path = `${opts.dir}/${rel}`;
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
