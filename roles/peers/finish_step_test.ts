import assert from "node:assert/strict";
import { join } from "node:path";
import { runFinishStep } from "./finish_step.ts";

const EXAMPLE = new URL("../../netboot/finish/hostname.sh", import.meta.url);
const log = () => {};

async function run(cmd: string, ...args: string[]): Promise<{ ok: boolean; out: string }> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { ok: r.success, out: (dec.decode(r.stdout) + dec.decode(r.stderr)).trim() };
}

Deno.test("a finishing step gets the PC's settings in its environment; its output is kept", async () => {
  const echoed: string[] = [];
  const ok = await runFinishStep({
    group: "lab",
    name: "env.sh",
    script: 'echo "$CASCADE_MAC $CASCADE_ADDRESS $CASCADE_DISK $CASCADE_GROUP $PREFIX"\n',
    env: { PREFIX: "lab101" },
  }, {
    masterUrl: "http://m",
    mac: "52:54:00:00:00:01",
    address: "10.0.0.5",
    disk: "/dev/vda",
    imageId: "ab".repeat(32),
    log,
    echo: (t) => echoed.push(t),
  });
  assert.equal(ok.ok, true);
  assert.match(
    ok.detail,
    /^Finishing step "env\.sh" succeeded in [\d.]+ s: 52:54:00:00:00:01 10\.0\.0\.5 \/dev\/vda lab lab101$/,
  );
  assert.equal(echoed.join(""), "52:54:00:00:00:01 10.0.0.5 /dev/vda lab lab101\n");

  const failed = await runFinishStep(
    { group: "lab", name: "bad.sh", script: "echo no ext4 partition >&2\nexit 3\n", env: {} },
    { masterUrl: "http://m", disk: "/dev/vda", imageId: "ab".repeat(32), log, echo: () => {} },
  );
  assert.equal(failed.ok, false);
  assert.match(
    failed.detail,
    /^Finishing step "bad\.sh" failed \(exit code 3\) after [\d.]+ s: no ext4 partition$/,
  );

  const slow = await runFinishStep(
    { group: "lab", name: "slow.sh", script: "sleep 30\n", env: {} },
    { masterUrl: "http://m", disk: "/dev/vda", imageId: "ab".repeat(32), log, timeout: 0.3 },
  );
  assert.deepEqual(slow, {
    ok: false,
    step: "slow.sh",
    detail: 'Finishing step "slow.sh" ran over 0.3 s and was stopped',
  });
});

// The shipped example on a real block device (a loop device with partitions: needs root).
const noLoop = Deno.uid() !== 0 ? "not running as root (losetup needs it)" : null;
Deno.test({
  name: "the example step writes the hostname into the disk's ext4 partition" +
    (noLoop ? ` (ignored: ${noLoop})` : ""),
  ignore: noLoop !== null,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "cascade-finish-" });
    let loop = "";
    try {
      const img = join(dir, "disk.img");
      await Deno.writeFile(img, new Uint8Array(0));
      await Deno.truncate(img, 16 * 1024 * 1024);
      const parts = await run(
        "sgdisk",
        "-o",
        "-n",
        "1:2048:+2M",
        "-t",
        "1:ef00",
        "-n",
        "2:0:0",
        img,
      );
      assert.ok(parts.ok, parts.out);
      // Partition 2 starts at sector 6144.
      const mk = await run("mkfs.ext4", "-q", "-F", "-E", `offset=${6144 * 512}`, img, "8M");
      assert.ok(mk.ok, mk.out);
      const attached = await run("losetup", "--find", "--show", "--partscan", img);
      assert.ok(attached.ok, attached.out);
      loop = attached.out;
      const result = await runFinishStep(
        {
          group: "lab",
          name: "hostname.sh",
          script: await Deno.readTextFile(EXAMPLE),
          env: { HOSTNAME_PREFIX: "lab101" },
        },
        {
          masterUrl: "http://m",
          mac: "52:54:00:12:34:56",
          disk: loop,
          imageId: "ab".repeat(32),
          log,
          echo: () => {},
        },
      );
      const part = `${loop.slice(5)}p2`;
      assert.equal(result.ok, true, result.detail);
      assert.match(
        result.detail,
        new RegExp(
          `hostname "lab101-525400123456" written to /etc/hostname on ${part} at byte 3145728 of ${loop}$`,
        ),
      );
      await run("losetup", "--detach", loop);
      loop = "";
      const got = await run("debugfs", "-R", "cat /etc/hostname", `${img}?offset=${6144 * 512}`);
      assert.match(got.out, /^lab101-525400123456$/m);
    } finally {
      if (loop) await run("losetup", "--detach", loop);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
