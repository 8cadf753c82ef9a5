// What tests of the netboot side share: a complete build.json as build-netboot writes it, for
// tests that stand in a fake netboot folder (vmlinuz, initrd, build.json) for a real build.
import type { BuildInfo } from "./build_info.ts";

export type { BuildInfo };
export { renderBuildInfo } from "./build_info.ts";

const HASH = "0".repeat(64);

/** A valid BuildInfo; `settings` replaces any top-level field (master, target, after...). */
export function sampleBuildInfo(settings: Partial<BuildInfo> = {}): BuildInfo {
  return {
    master: "http://10.0.0.1:8080",
    kernelVersion: "6.1.0-test-amd64",
    kernelArgs: "quiet",
    binaryMode: "bundle",
    compression: "zstd -19",
    target: "/dev/sda",
    after: "serve",
    modules: 4,
    firmware: 0,
    secureBoot: false,
    cpioBytes: 1024,
    inputs: {
      kernel: { path: "/boot/vmlinuz-6.1.0-test-amd64", sha256: HASH },
      modules: { path: "/lib/modules/6.1.0-test-amd64" },
      busybox: { path: "/bin/busybox", sha256: HASH },
      deno: { path: "/usr/bin/deno", version: "2.0.0", sha256: HASH },
      cascade: { mode: "bundle", sha256: HASH },
    },
    ...settings,
  };
}
