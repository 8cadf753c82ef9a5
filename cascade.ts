// The one Cascade binary: `cascade <command> [options]`. Every deno task and the netboot
// initramfs call this file; each command lives in its own module and exports `main`.
import { UsageError } from "./imagetools/kit/mod.ts";
import { assembleMain, infoMain, sliceMain, verifyMain } from "./imagetools/mod.ts";
import { clientMain, fakeServerMain, serverMain } from "./roles/peers/mod.ts";
import { demoMain } from "./roles/demo/mod.ts";
import { simulateMain } from "./roles/planner/mod.ts";
import { historyMain, masterMain } from "./roles/master/mod.ts";
import { buildNetbootMain } from "./netboot/mod.ts";

type Main = (args: string[]) => Promise<number>;

// Each entry: command name -> [one-line summary, main]. Keep sorted by workflow order.
const COMMANDS: Record<string, [string, Main]> = {
  // COMMANDS-TABLE (one line per command; add yours here)
  slice: ["slice a golden image or block device into verified chunks", sliceMain],
  info: ["summarise a slices folder or manifest: size, chunks, image id", infoMain],
  verify: ["check an image or disk against a manifest, naming every bad chunk", verifyMain],
  assemble: ["rebuild an image (or write a disk) from slices, verifying each chunk", assembleMain],
  master: ["pair waiting clients with servers; status, dashboard, boot files", masterMain],
  "fake-server": ["serve the image from its slices to bootstrap the cascade", fakeServerMain],
  server: ["serve the image from a disk that already holds it", serverMain],
  client: ["receive the image onto a disk, verify it, then serve it on", clientMain],
  demo: ["a whole lab images itself on this machine (files stand in for disks)", demoMain],
  simulate: ["plan a run: PCs imaged over time in classic and relay mode", simulateMain],
  history: ["print the master's run history: each PC's result and failures", historyMain],
  "build-netboot": ["write kernel, initramfs and iPXE/PXELINUX/dnsmasq configs", buildNetbootMain],
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  return [
    "cascade: image a whole room of lab PCs from one golden disk image",
    "",
    "USAGE:",
    "  cascade <command> [options]      (cascade <command> --help for its options)",
    "",
    "COMMANDS:",
    ...Object.entries(COMMANDS).map(([n, [s]]) => `  ${n.padEnd(width)}${s}`),
    "",
  ].join("\n");
}

export async function run(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || name === "-h" || name === "--help" || name === "help") {
    console.log(usage());
    return name ? 0 : 2;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    console.error(`cascade: unknown command "${name}" (try "cascade --help")`);
    return 2;
  }
  try {
    return await entry[1](rest);
  } catch (err) {
    const e = err as Error;
    console.error(`cascade ${name}: ${e.message ?? String(err)}`);
    if (Deno.env.get("CASCADE_DEBUG")) console.error(e.stack);
    // A bad flag value (the units parsers say "Invalid --flag ...") is a usage error too.
    return e instanceof UsageError || /^Invalid --/.test(e.message ?? "") ? 2 : 1;
  }
}

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
