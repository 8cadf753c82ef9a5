// Hostile LAN, state: what a stranger makes the master keep is bounded. A session floods
// failures with made-up reasons and 1 KiB details, and boot requests come for more MACs than
// the master remembers: each PC keeps its last 10 failures (details cut to 200 characters, all
// counted), /metrics gets no series per made-up reason, the oldest boot placeholders are
// evicted (and a host's earlier MAC when it boots with another), and the honest PCs image.
import assert from "node:assert/strict";
import { assertHonestImaged, hostileLab, metricsOf, rawGet, startHonest } from "./hostile_kit.ts";
import { clientHello, rawSession } from "./hostile_ws.ts";

const MACS = 1100; // the master remembers 1024 boot requests (MAX_BOOTING)
const mac = (i: number) =>
  `52-54-00-${
    [(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, "0")).join("-")
  }`;

const colons = (m: string) => m.replaceAll("-", ":");
/** The i-th stranger's address on loopback: 127.0.10.1, 127.0.10.2, ... */
const host = (i: number) => `127.0.${10 + Math.floor(i / 250)}.${(i % 250) + 1}`;

Deno.test("hostile: flooded failures and boot requests for new MACs are kept bounded", async () => {
  const lab = await hostileLab(2 * 1024 * 1024, ["--enrol", "all"]);
  const held: { close(): void }[] = [];
  try {
    startHonest(lab, ["pc1", "pc2"]);
    // 50 failures (within the session's burst of 60), each with its own reason and 1 KiB.
    const flood = await rawSession(lab.url, "127.0.0.41");
    held.push(flood);
    flood.send(clientHello("flood", lab.imageId));
    await flood.next((m) => m.type === "welcome");
    for (let i = 0; i < 50; i++) {
      flood.send({
        type: "failed",
        server: "fake",
        reason: `made-up-${i}`,
        detail: "x".repeat(1024),
      });
    }
    const other = 'cascade_chunk_failures_total{image="golden.img",reason="other"}';
    let m = new Map<string, number>();
    for (let i = 0; i < 100 && m.get(other) !== 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      m = await metricsOf(lab.url);
    }
    assert.equal(m.get(other), 50, "every failure counted, as other");
    assert.deepEqual([...m.keys()].filter((k) => k.includes("made-up")), []);
    const peer = (await lab.status(lab.url)).peers.find((p) => p.name === "flood")!;
    assert.equal(peer.failures.length, 10);
    assert.deepEqual(
      new Set(peer.failures.map((f) => `${f.reason} ${f.detail.length}`)),
      new Set(["other 200"]),
    );
    flood.close(); // (a client that never fetches would be the honest PCs' relay)
    // One host asking with 100 MACs is one booting placeholder (its newest): before, 100.
    const booting = async () =>
      (await lab.status(lab.url)).peers.filter((p) => p.state === "booting").map((p) => p.id);
    const ask = async (i: number, from: string) => {
      const res = await rawGet(lab.url, `/boot/ipxe?mac=${mac(i)}`, from);
      assert.equal(res.status, 200);
    };
    for (let i = 0; i < 100; i++) await ask(i, "127.0.0.42");
    assert.deepEqual(await booting(), [colons(mac(99))]);
    // 1,100 MACs from as many hosts: the newest 1,024 are kept, the oldest evicted.
    for (let i = 0; i < MACS; i += 4) {
      await Promise.all([0, 1, 2, 3].map((j) => ask(1000 + i + j, host(i + j))));
    }
    const ids = await booting();
    assert.equal(ids.length, 1024);
    assert.deepEqual(
      [ids.includes(colons(mac(1000))), ids.includes(colons(mac(1000 + MACS - 1)))],
      [
        false,
        true,
      ],
    );
    await assertHonestImaged(lab, ["pc1", "pc2"]);
  } finally {
    for (const h of held) h.close();
    await lab.close();
  }
});
