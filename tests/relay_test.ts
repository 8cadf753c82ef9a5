// End-to-end tests of relay mode: real master, fake server and clients as processes on loopback.
import assert from "node:assert/strict";
import { makeLab, waitExit } from "./lab_kit.ts";
import type { PeerStatus, RunStatus } from "../roles/master/mod.ts";

const MiB = 1024 * 1024;

/** The cycle in "served by" links (peer -> every server it was ever served by), or null. */
export function servedByCycle(peers: Pick<PeerStatus, "id" | "servedBy">[]): string[] | null {
  const edges = new Map(peers.map((p) => [p.id, p.servedBy]));
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (id: string): string[] | null => {
    if (state.get(id) === "done") return null;
    if (state.get(id) === "open") return [...path.slice(path.indexOf(id)), id];
    state.set(id, "open");
    path.push(id);
    for (const next of edges.get(id) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(id, "done");
    return null;
  };
  for (const p of peers) {
    const cycle = visit(p.id);
    if (cycle) return cycle;
  }
  return null;
}

Deno.test("servedByCycle finds a cycle and accepts a chain", () => {
  const chain = [
    { id: "a", servedBy: ["fake"] },
    { id: "b", servedBy: ["a"] },
    { id: "c", servedBy: ["x", "b"] },
  ];
  assert.equal(servedByCycle(chain), null);
  assert.deepEqual(
    servedByCycle([...chain, { id: "x", servedBy: ["c"] }]),
    ["c", "x", "c"],
  );
});

/** Each peer's last server only. A relay that the master demotes mid-run (slow, stalled) is
 * re-attached below its former downstream, so "ever served by" may hold a cycle that is right:
 * no PC was ever served by its own downstream at one time, which is what must not happen. */
function lastServers(peers: Pick<PeerStatus, "id" | "servedBy">[]) {
  return peers.map((p) => ({ id: p.id, servedBy: p.servedBy.slice(-1) }));
}

async function finalStatus(dir: string): Promise<RunStatus> {
  return JSON.parse(await Deno.readTextFile(`${dir}/status.json`));
}

Deno.test("relay: 10 clients, every disk identical to the golden image, no cycle", async () => {
  const lab = await makeLab(8 * MiB);
  try {
    const url = await lab.master(["--mode", "relay", "--expect", "10", "--linger", "1"]);
    lab.fake("fake", url);
    const names = Array.from({ length: 10 }, (_, i) => `pc-${i + 1}`);
    for (const n of names) lab.client(n, url);
    assert.equal(await waitExit(lab, "master"), 0);
    for (const n of names) {
      assert.equal(await waitExit(lab, n, 20_000), 0, `${n} exits 0`);
      assert.ok(await lab.matches(n), `${n}'s disk equals the golden image`);
    }
    const status = await finalStatus(lab.dir);
    const clients = status.peers.filter((p) => p.role === "client");
    assert.equal(clients.length, 10);
    assert.ok(clients.every((p) => p.verified), "every client verified");
    assert.equal(servedByCycle(lastServers(status.peers)), null);
    // Every client's chain of servers ends at the fake server.
    const byId = new Map(status.peers.map((p) => [p.id, p]));
    for (const c of clients) {
      let at = c;
      for (let hops = 0; at.role !== "fake"; hops++) {
        assert.ok(hops <= 10, `chain from ${c.id} is too long`);
        const next = byId.get(at.servedBy.at(-1) ?? "");
        assert.ok(next, `${at.id} was served by a known peer (${at.servedBy})`);
        at = next;
      }
    }
  } finally {
    await lab.close();
  }
});

Deno.test("relay: a relay killed mid-run; its downstream still finish verified", async () => {
  const lab = await makeLab(8 * MiB);
  try {
    const url = await lab.master(["--mode", "relay", "--expect", "4", "--linger", "1"]);
    // 1 MB/s at the fake server: the 6 MiB of non-zero chunks take about 6 s, so the chain is
    // still receiving when one of its relays dies, even if the clients start slowly.
    lab.fake("fake", url, ["--rate-limit", "1MB/s"]);
    const names = ["a", "b", "c", "d", "e"];
    for (const n of names) lab.client(n, url);
    // Zero chunks count as held from the start; look at the others.
    const zeros = lab.manifest.chunks.filter((c) => c.zero).length;
    const nonZero = lab.manifest.chunks.length - zeros;
    // A relay still receiving (past a couple of chunks, short of all), with a receiving client
    // below it.
    let victim = "";
    await lab.until(url, (s) => {
      const receiving = (id: string) =>
        s.peers.some((p) => p.id === id && p.role === "client" && p.state === "receiving");
      const relay = s.peers.find((p) =>
        receiving(p.id) && p.held - zeros >= 2 && p.held - zeros < nonZero - 2 &&
        s.peers.some((q) => q.server === p.id && receiving(q.id))
      );
      victim = relay?.id ?? "";
      return victim !== "";
    }, "a relay with downstream, mid-transfer");
    const before = await lab.status(url);
    const downstream = before.peers.find((p) => p.server === victim)!.id;
    lab.procs.kill(victim);
    assert.equal(await waitExit(lab, "master"), 0);
    const status = await finalStatus(lab.dir);
    const survivors = names.filter((n) => n !== victim);
    for (const n of survivors) {
      assert.ok(await lab.matches(n), `${n}'s disk equals the golden image`);
      assert.ok(status.peers.find((p) => p.id === n)?.verified, `${n} verified`);
    }
    const d = status.peers.find((p) => p.id === downstream)!;
    assert.equal(d.servedBy[0], victim, `${downstream} was first served by ${victim}`);
    assert.ok(d.servedBy.length >= 2, `${downstream} got another server: ${d.servedBy}`);
    assert.ok(!d.servedBy.slice(1).includes(victim), "never the dead relay again");
    assert.equal(status.peers.find((p) => p.id === victim)?.state, "left");
    assert.equal(servedByCycle(lastServers(status.peers)), null);
  } finally {
    await lab.close();
  }
});
