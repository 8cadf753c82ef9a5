import assert from "node:assert/strict";
import { roleOf, sampleCpu, startLoad } from "./lab_load.ts";

const alive = (pid: number) => Deno.stat(`/proc/${pid}`).then(() => true, () => false);

Deno.test("startLoad: busy processes run until stop ends each by its PID; the sampler counts them", async () => {
  const load = startLoad(2);
  const cpu = sampleCpu(load.pids, 50);
  assert.equal(load.pids.length, 2);
  for (const pid of load.pids) assert.equal(await alive(pid), true);
  // Spin until the sampler has seen some CPU (no timed assertion: it must come).
  for (
    let i = 0;
    i < 1e6 && (await Deno.readTextFile(`/proc/${load.pids[0]}/stat`)).split(" ")[13] === "0";
    i++
  ) {
    await new Promise((r) => setTimeout(r, 20));
  }
  // The sampler's last look first, while the busy processes still live: a periodic sample may
  // not have come since their CPU went above 0 (the parallel suite starves it).
  const roles = await cpu.stop();
  await load.stop();
  for (const pid of load.pids) assert.equal(await alive(pid), false);
  assert.deepEqual(Object.keys(roles), ["load (busy sh)"]);
  assert.ok(roles["load (busy sh)"] > 0);
});

Deno.test("roleOf: a run's processes by command line", () => {
  const none = new Set<number>();
  const cmd = (s: string) => roleOf(s, none, 10);
  assert.equal(
    cmd("ip netns exec cl-3 /usr/bin/deno run -A --quiet /x/cascade.ts client --master u"),
    "cascade clients",
  );
  assert.equal(
    cmd("/usr/bin/deno run -A --quiet /x/cascade.ts master --mode relay"),
    "cascade master",
  );
  assert.equal(
    cmd("/usr/bin/deno run -A /x/cascade.ts fake-server --slices d"),
    "cascade fake-server",
  );
  assert.equal(cmd("udp-receiver --file d --interface eth0 --nokbd"), "udp-receivers");
  assert.equal(cmd("udp-sender --file img"), "udp-sender");
  assert.equal(cmd("bash"), null);
  assert.equal(roleOf("sh -c while :; do :; done", new Set([10]), 10), "load (busy sh)");
});
