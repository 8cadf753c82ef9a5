// The emulated switched LAN (scripts/lab_net.sh): shaped ports, a relay run across namespaces
// with every disk checked, and nothing left behind by `down`. Needs root, ip and tc.
import assert from "node:assert/strict";
import { join } from "node:path";
import { labLeftovers, LabNet } from "../scripts/lab_net.ts";
import { makeRandomImage, pcHost, runCascade, SERVER_HOST } from "../scripts/lab_scenarios.ts";
import type { RunStatus } from "../roles/master/mod.ts";

const MiB = 1024 * 1024;

async function hasTools(): Promise<boolean> {
  if (Deno.build.os !== "linux" || Deno.uid() !== 0) return false;
  for (const tool of ["ip", "tc"]) {
    const ok = await new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" })
      .output().then((o) => o.success, () => false);
    if (!ok) return false;
  }
  return true;
}

const ignore = !(await hasTools());

async function namespaces(prefix: string): Promise<string[]> {
  const out = await new Deno.Command("ip", { args: ["netns", "list"] }).output();
  return new TextDecoder().decode(out.stdout).split("\n").map((l) => l.split(" ")[0])
    .filter((n) => n.startsWith(prefix));
}

Deno.test({
  name: "lab_net: every port shaped both ways; down ends recorded processes, leaves nothing",
  ignore,
  async fn() {
    const net = await LabNet.up({ hosts: 2, rate: "100mbit" });
    try {
      assert.deepEqual(
        (await namespaces(net.prefix)).sort(),
        [`${net.prefix}h1`, `${net.prefix}h2`, `${net.prefix}sw`],
      );
      const up = await net.run(1, ["tc", "qdisc", "show", "dev", "eth0"]);
      assert.match(up, /qdisc tbf \S+ root .*rate 100Mbit burst 128Kb/);
      const down = await new Deno.Command("ip", {
        args: ["netns", "exec", `${net.prefix}sw`, "tc", "qdisc", "show", "dev", "p2"],
      }).output();
      assert.match(new TextDecoder().decode(down.stdout), /qdisc tbf .*rate 100Mbit/);
      assert.match(
        await net.run(2, ["ip", "-4", "addr", "show", "dev", "eth0"]),
        /10\.213\.0\.2\/24/,
      );
      // A long-running process in a host: `down` must end it.
      const sleeper = net.spawn(2, ["sleep", "300"]);
      for (
        let i = 0;
        i < 100 && (await labLeftovers(net.prefix)).every((l) => !l.startsWith("pid"));
        i++
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok((await labLeftovers(net.prefix)).some((l) => l.startsWith("pid")), "PID recorded");
      await net.down();
      assert.equal((await sleeper.done).success, false, "the sleeper was ended");
      assert.deepEqual(await labLeftovers(net.prefix), []);
      assert.deepEqual(await namespaces(net.prefix), []);
      await assert.rejects(Deno.stat(`/run/cascade-lab/${net.prefix}`));
    } finally {
      await net.down();
    }
  },
});

Deno.test({
  name: "lab_net: 3 PCs imaged in relay mode across namespaces at 100 Mbit/s",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cascade-lab-net-test-" });
    const pcs = 3;
    const net = await LabNet.up({ hosts: pcHost(pcs), rate: "100mbit" });
    try {
      const image = await makeRandomImage(dir, 16 * MiB, MiB);
      const run = join(dir, "run");
      const r = await runCascade({
        net,
        image,
        pcs,
        dir: run,
        timeout: 50,
        mode: "relay",
        fakeCapacity: 1,
        capacity: 3,
        fanout: 1,
        linger: 1,
      });
      assert.ok(r.ok, `the run failed: ${r.reason}`);
      assert.deepEqual(r.pcs.map((p) => p.matches), [true, true, true]);
      // The master paired each peer's port with the address it saw: the peer's own host.
      const status = JSON.parse(await Deno.readTextFile(join(run, "status.json"))) as RunStatus;
      for (let k = 1; k <= pcs; k++) {
        const peer = status.peers.find((p) => p.name === `pc${k}`);
        assert.match(peer?.url ?? "", new RegExp(`^http://10\\.213\\.0\\.${pcHost(k)}:\\d+$`));
      }
      const fake = status.peers.find((p) => p.role === "fake");
      assert.match(fake?.url ?? "", new RegExp(`^http://10\\.213\\.0\\.${SERVER_HOST}:\\d+$`));
      assert.deepEqual(net.running(), [], "every process of the run has exited");
    } finally {
      await net.down();
      await Deno.remove(dir, { recursive: true });
    }
    assert.deepEqual(await namespaces(net.prefix), []);
  },
});

Deno.test({
  name: "lab_net: rooms that are not flat: a slower port, two switches and an uplink, a stall",
  ignore,
  async fn() {
    const net = await LabNet.up({
      hosts: 3,
      rate: "100mbit",
      ports: { 3: "10mbit" },
      switchOf: { 2: 2 },
      uplink: "200mbit",
    });
    try {
      assert.deepEqual((await namespaces(net.prefix)).sort(), [
        `${net.prefix}h1`,
        `${net.prefix}h2`,
        `${net.prefix}h3`,
        `${net.prefix}sw`,
        `${net.prefix}sw2`,
      ]);
      const tc = async (ns: string, dev: string) =>
        new TextDecoder().decode(
          (await new Deno.Command("ip", {
            args: ["netns", "exec", `${net.prefix}${ns}`, "tc", "qdisc", "show", "dev", dev],
          }).output()).stdout,
        );
      assert.match(await net.run(3, ["tc", "qdisc", "show", "dev", "eth0"]), /rate 10Mbit/);
      assert.match(await tc("sw", "p3"), /rate 10Mbit/);
      assert.match(await tc("sw2", "p2"), /rate 100Mbit/);
      assert.match(await tc("sw", "u2"), /rate 200Mbit/);
      assert.match(await tc("sw2", "u1"), /rate 200Mbit/);
      assert.equal(
        net.topology(),
        [
          "# written by scripts/lab_net.ts: one line per host",
          "sw1 10.213.0.1",
          "sw2 10.213.0.2",
          "sw1 10.213.0.3",
          "",
        ].join("\n"),
      );
      // A stall stops the host's processes (state T) and lets them go on afterwards.
      const sleeper = net.spawn(2, ["sleep", "300"]);
      let pid = "";
      for (let i = 0; i < 100 && !pid; i++) {
        pid = (await labLeftovers(net.prefix)).find((l) => l.startsWith("pid"))?.slice(4) ?? "";
        await new Promise((r) => setTimeout(r, 50));
      }
      const state = async () => (await Deno.readTextFile(`/proc/${pid}/stat`)).split(" ")[2];
      const stall = net.stall(2, 1);
      let stopped = false;
      for (let i = 0; i < 40 && !stopped; i++) {
        stopped = (await state()) === "T";
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.ok(stopped, "the host's process was stopped");
      await stall;
      // Just after SIGCONT it may still be running ("R") on its way back to sleep.
      let after = await state();
      for (let i = 0; i < 40 && after !== "S"; i++) {
        await new Promise((r) => setTimeout(r, 25));
        after = await state();
      }
      assert.equal(after, "S", "and goes on after the stall");
      await net.down();
      await sleeper.done;
      assert.deepEqual(await namespaces(net.prefix), []);
    } finally {
      await net.down();
    }
  },
});
