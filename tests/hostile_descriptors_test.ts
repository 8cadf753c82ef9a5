// Hostile LAN, descriptors: a stranger's idle HTTP connections (half a request head, then
// nothing) each hold 3 of the master's descriptors (its socket and both ends of the relay to
// Deno.serve). The master counts descriptors, not connections, per address and in total, so
// under a descriptor limit of 256 it closes the flood's connections at once before it runs
// out: it never fails to accept, still answers, and honest PCs image during the flood.
import assert from "node:assert/strict";
import {
  assertHonestImaged,
  assertMasterAnswers,
  hostileLab,
  idleRequests,
  metricsOf,
  startHonest,
} from "./hostile_kit.ts";

const LIMIT = 256;

/** `pred()` within `ms` (polled), else a failure naming `what`. */
async function until(pred: () => Promise<boolean> | boolean, what: string, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("hostile: idle HTTP connections under a descriptor limit of 256 are refused before the master runs out", async () => {
  const lab = await hostileLab(2 * 1024 * 1024, [], 256 * 1024, [
    "prlimit",
    `--nofile=${LIMIT}:${LIMIT}`,
  ]);
  const floods: ReturnType<typeof idleRequests>[] = [];
  try {
    const pid = lab.procs.procs.get("master")!.child.pid;
    const fds = () => [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
    startHonest(lab, []);
    await lab.until(lab.url, (s) => s.peers.some((p) => p.name === "fake" && p.url), "fake");
    // 40 idle connections from each of 3 addresses, one address after the other: 120 x 3
    // descriptors, more than the limit. Each refused one is closed by the master, and counted.
    let m = new Map<string, number>();
    const refused = (why: string) => m.get(`cascade_connections_refused_total{reason="${why}"}`);
    const closed = () => floods.reduce((n, f) => n + f.closed(), 0);
    // A relayed connection counts 4 (its file too): 64 per address is 16; past 144 of the cap
    // of 192 (256 less a reserve of 64), only an address holding at most 32 gets more.
    const steps: [string, number][] = [["127.0.0.61", 16], ["127.0.0.62", 16], ["127.0.0.63", 8]];
    for (const [host, kept] of steps) {
      const flood = idleRequests(lab.url, 40, host);
      floods.push(flood);
      await until(async () => {
        m = await metricsOf(lab.url);
        return refused("address")! + refused("total")! === closed() && flood.open() === kept;
      }, `${host}: ${40 - kept} of its 40 connections closed`);
    }
    assert.deepEqual(floods.map((f) => f.open()), [16, 16, 8]);
    assert.equal(refused("address"), 48);
    assert.equal(refused("total"), 32);
    assert.equal(m.get("cascade_port_descriptors_cap"), 192);
    assert.ok(m.get("cascade_port_descriptors")! <= 192);
    assert.ok(fds() < LIMIT, `the master holds ${fds()} descriptors`);
    // The flood is still held: the master answers, and an honest run images byte-identical.
    await assertMasterAnswers(lab);
    for (const pc of ["pc1", "pc2"]) lab.client(pc, lab.url);
    await assertHonestImaged(lab, ["pc1", "pc2"]);
    assert.ok(fds() < LIMIT, `the master holds ${fds()} descriptors`);
    const log = await lab.procs.logText("master");
    assert.doesNotMatch(log, /accept\.failed/);
    assert.match(log, /master\.connections\.refused .*refusedAddress=\d+/);
    assert.ok(lab.procs.running("master"));
    // Once the flood lets go, its slots come back.
    for (const f of floods) f.close();
    await until(async () => {
      m = await metricsOf(lab.url);
      return m.get("cascade_port_descriptors")! <= 32;
    }, "the flood's descriptors released");
  } finally {
    for (const f of floods) f.close();
    await lab.close();
  }
});
