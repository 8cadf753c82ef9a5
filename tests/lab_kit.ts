// Shared setup for end-to-end tests: a golden image, its slices, and real Cascade processes.
import { join } from "node:path";
import { sliceImage } from "../imagetools/mod.ts";
import type { Manifest } from "../imagetools/mod.ts";
import { makeSampleImage, sha256File } from "../roles/demo/mod.ts";
import { LabProcesses } from "../roles/demo/mod.ts";
import type { RunStatus } from "../roles/master/mod.ts";
import { renderBuildInfo, sampleBuildInfo } from "../netboot/testkit.ts";

export interface Lab {
  dir: string;
  golden: string;
  slices: string;
  imageId: string;
  manifest: Manifest;
  procs: LabProcesses;
  disk(name: string): string;
  /** Start a master on port 0 with these extra flags (run by `wrap`, if any); its URL. */
  master(args: string[], name?: string, wrap?: string[]): Promise<string>;
  status(url: string): Promise<RunStatus>;
  /** Poll the master's status until `pred` holds (bounded). */
  until(
    url: string,
    pred: (s: RunStatus) => boolean,
    what: string,
    ms?: number,
  ): Promise<RunStatus>;
  client(name: string, url: string, extra?: string[]): void;
  /** A fake server named `name`, serving the slices. */
  fake(name: string, url: string, extra?: string[]): void;
  /** A server named `name`, serving `source` (an image file). */
  server(name: string, url: string, source: string, extra?: string[]): void;
  /** Does this disk hold exactly the golden image? */
  matches(name: string): Promise<boolean>;
  /** Every process's log, for failure messages. */
  logs(): Promise<string>;
  close(): Promise<void>;
}

export async function makeLab(size: number, chunkSize = 256 * 1024): Promise<Lab> {
  const dir = await Deno.makeTempDir({ prefix: "cascade-test-" });
  const golden = join(dir, "golden.img");
  await makeSampleImage(golden, size);
  const slices = join(dir, "slices");
  const sliced = await sliceImage({ image: golden, out: slices, chunkSize });
  const procs = new LabProcesses(join(dir, "logs"));
  await Deno.mkdir(join(dir, "disks"));
  const lab: Lab = {
    dir,
    golden,
    slices,
    imageId: sliced.imageId,
    manifest: sliced.manifest,
    procs,
    disk: (name) => join(dir, "disks", `${name}.img`),
    master: (args, name = "master", wrap = []) =>
      procs.startMaster(
        [
          "--slices",
          slices,
          "--host",
          "127.0.0.1",
          "--port",
          "0",
          "--status-file",
          join(dir, "status.json"),
          ...args,
        ],
        30_000,
        name,
        wrap,
      ),
    async status(url) {
      return await (await fetch(`${url}/api/v1/status`)).json();
    },
    async until(url, pred, what, ms = 60_000) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        try {
          const s = await lab.status(url);
          if (pred(s)) return s;
        } catch { /* master not up or gone */ }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`Timed out waiting for ${what}\n${await lab.logs()}`);
    },
    client(name, url, extra = []) {
      procs.start(name, [
        "client",
        "--master",
        url,
        "--target",
        lab.disk(name),
        "--name",
        name,
        "--listen",
        "127.0.0.1",
        "--quiet",
        ...extra,
      ]);
    },
    fake(name, url, extra = []) {
      procs.start(name, [
        "fake-server",
        "--master",
        url,
        "--slices",
        slices,
        "--name",
        name,
        "--listen",
        "127.0.0.1",
        ...extra,
      ]);
    },
    server(name, url, source, extra = []) {
      procs.start(name, [
        "server",
        "--master",
        url,
        "--source",
        source,
        "--name",
        name,
        "--listen",
        "127.0.0.1",
        ...extra,
      ]);
    },
    async matches(name) {
      return await sha256File(lab.disk(name), sliced.manifest.size).then((h) =>
        h === sliced.manifest.sha256
      ).catch(() => false);
    },
    async logs() {
      const parts: string[] = [];
      for (const name of procs.procs.keys()) {
        parts.push(`----- ${name}\n${(await procs.logText(name)).slice(-3000)}`);
      }
      return parts.join("\n");
    },
    async close() {
      await procs.stopAll();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return lab;
}

/** Wait until the named process exits; fail with the logs if it does not in time. */
export async function waitExit(lab: Lab, name: string, ms = 90_000): Promise<number> {
  const p = lab.procs.procs.get(name);
  if (!p) throw new Error(`No process "${name}"`);
  const timer = new Promise<null>((r) => setTimeout(() => r(null), ms));
  const s = await Promise.race([p.child.status, timer]);
  if (!s) throw new Error(`"${name}" did not exit within ${ms / 1000} s\n${await lab.logs()}`);
  return s.code;
}

/** Parse `role.event k=v ...` log lines of one process. */
export function logEvents(text: string, event: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const line of text.split("\n")) {
    const m = new RegExp(`\\s${event.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s(.*)$`).exec(line);
    if (!m) continue;
    const fields: Record<string, string> = {};
    for (const kv of m[1].matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)) {
      fields[kv[1]] = kv[2].startsWith('"') ? JSON.parse(kv[2]) : kv[2];
    }
    out.push(fields);
  }
  return out;
}

/** A build-netboot output with stand-in kernel and initramfs (the master only serves them). */
export async function fakeNetbootBuild(
  dir: string,
  build: { master: string; after: "serve" | "reboot" | "poweroff" } = {
    master: "http://10.0.0.1:8080",
    after: "poweroff",
  },
) {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "vmlinuz"), "kernel");
  await Deno.writeTextFile(join(dir, "initrd"), "initramfs");
  await Deno.writeTextFile(
    join(dir, "build.json"),
    renderBuildInfo(
      sampleBuildInfo({ master: build.master, target: "/dev/vda", after: build.after }),
    ),
  );
}
