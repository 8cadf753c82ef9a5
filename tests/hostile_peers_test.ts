// Hostile LAN, peer records: a stranger connects 5,000 times, says hello under a new name each
// session and goes. Before, each session left a record for the whole run (5,000 more peers in
// /api/v1/status, on every dashboard). Now a record the run did nothing with goes when its
// session closes (roles/master/peer_bound.ts); a run holds at most --max-peers records, and a
// hello past them is refused with the limit named and counted in /metrics. The honest PCs image.
import assert from "node:assert/strict";
import { assertHonestImaged, hostileLab, metricsOf, startHonest } from "./hostile_kit.ts";
import { logEvents } from "./lab_kit.ts";
import { clientHello, type RawSession, rawSession } from "./hostile_ws.ts";

const SESSIONS = 5000;
const AT_ONCE = 16;
const MAX_PEERS = 64;
const REFUSED = 'cascade_hellos_refused_total{image="golden.img",reason="peers"}';

function rssMiB(pid: number): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(text)![1]) / 1024;
}

/** The i-th stranger's address on loopback (16 at once stay far below 64 per address). */
const host = (i: number) => `127.0.20.${(i % 200) + 1}`;

/** One session: hello under `name`, the master's first answer, then (unless `keep`) gone. */
async function stranger(url: string, i: number, name: string, imageId: string, keep = false) {
  const s = await rawSession(url, host(i));
  s.send(clientHello(name, imageId));
  const answer = await s.next((m) => m.type === "welcome" || m.type === "error");
  if (!keep) {
    s.close();
    await s.closed;
  }
  return { s, answer };
}

Deno.test("hostile: hellos under new names each session leave no record; the table is capped", async () => {
  const lab = await hostileLab(2 * 1024 * 1024, ["--max-peers", String(MAX_PEERS)]);
  const held: RawSession[] = [];
  try {
    startHonest(lab, ["pc1", "pc2"]);
    await lab.until(lab.url, (s) => s.peers.some((p) => p.name === "fake" && p.url), "fake");
    const pid = lab.procs.procs.get("master")!.child.pid;
    const peersBefore = (await lab.status(lab.url)).peers.length;
    const rssBefore = rssMiB(pid);
    let next = 0;
    const welcomed: number[] = [];
    await Promise.all(Array.from({ length: AT_ONCE }, async () => {
      for (let i = next++; i < SESSIONS; i = next++) {
        const { answer } = await stranger(lab.url, i, `stranger-${i}`, lab.imageId);
        if (answer.type === "welcome") welcomed.push(i);
      }
    }));
    // The last sessions' closes reach the master after their close frames: wait for the count.
    const after = await lab.until(
      lab.url,
      (s) => !s.peers.some((p) => p.name.startsWith("stranger-")),
      "the strangers' records gone",
    );
    const rssAfter = rssMiB(pid);
    const statusBytes = (await (await fetch(`${lab.url}/api/v1/status`)).text()).length;
    const strangers = after.peers.filter((p) => p.name.startsWith("stranger-"));
    console.log(
      `peers in /api/v1/status: ${peersBefore} before ${SESSIONS} stranger sessions, ${after.peers.length} after (${strangers.length} strangers' records, ${
        strangers.filter((p) => p.state !== "left").length
      } not left); welcomed ${welcomed.length}; master RSS ${rssBefore.toFixed(0)} -> ${
        rssAfter.toFixed(0)
      } MiB; /api/v1/status ${statusBytes} bytes`,
    );
    assert.equal(welcomed.length, SESSIONS, "each stranger was welcomed (the table had room)");
    const others = after.peers.filter((p) => !["fake", "pc1", "pc2"].includes(p.name));
    assert.deepEqual(others.map((p) => p.name), [], "only the fake server and the honest PCs");
    await assertHonestImaged(lab, ["pc1", "pc2"]);

    // Strangers that stay connected fill the table: the next hello is refused, naming the cap.
    const room = MAX_PEERS - (await lab.status(lab.url)).peers.length;
    for (let i = 0; i < room; i++) {
      held.push((await stranger(lab.url, i, `sitter-${i}`, lab.imageId, true)).s);
    }
    const refused = await stranger(lab.url, 0, "one-too-many", lab.imageId);
    assert.deepEqual(refused.answer, {
      type: "error",
      message:
        `This master holds ${MAX_PEERS} peer records already (maxPeers ${MAX_PEERS}): try again later`,
    });
    await stranger(lab.url, 1, "one-more", lab.imageId);
    assert.equal((await metricsOf(lab.url)).get(REFUSED), 2, "both refusals counted");
    // Logged once, not per attempt (once a minute at most).
    const text = await lab.procs.logText("master");
    const full = logEvents(text, "master.peers-full");
    assert.deepEqual(full.map((f) => [f.max, f.refused]), [[String(MAX_PEERS), "1"]]);
  } finally {
    for (const s of held) s.close();
    await lab.close();
  }
});
