// Hostile LAN, claims: the master believes nothing a peer says about itself. A hello that says
// "complete" is not a verified PC; a session cannot take another PC's MAC or id; a PC counts
// (and its MAC is recorded as imaged) only once this run imaged it and it proved it holds the
// image. 127.0.0.x source addresses stand in for other hosts of the LAN.
import assert from "node:assert/strict";
import { assertHonestImaged, hostileLab, rawGet, startHonest } from "./hostile_kit.ts";
import { clientHello, rawSession } from "./hostile_ws.ts";

Deno.test("hostile: hellos saying complete do not count as verified PCs", async () => {
  const lab = await hostileLab(2 * 1024 * 1024, ["--expect", "3"]);
  try {
    const liars = [];
    for (let i = 1; i <= 3; i++) {
      const s = await rawSession(lab.url, `127.0.0.${10 + i}`);
      s.send(clientHello(`liar${i}`, lab.imageId, { complete: true, held: 8 }));
      await s.next((m) => m.type === "challenge");
      liars.push(s);
    }
    // One answers the challenge with a made-up digest: refused and closed.
    liars[0].send({ type: "proof", sha256: "0".repeat(64) });
    const refused = await liars[0].next((m) => m.type === "error");
    assert.match(String(refused.message), /Wrong proof/);
    await liars[0].closed;
    const status = await lab.status(lab.url);
    assert.equal(status.ended, null, "three claims did not end a --expect 3 run");
    assert.equal(status.totals.verified, 0);
    assert.deepEqual(status.queues.servers.map((s) => s.id), [], "no liar serves");
    // The honest PCs still image; the liars never count.
    startHonest(lab, ["pc1", "pc2"]);
    await assertHonestImaged(lab, ["pc1", "pc2"]);
    const after = await lab.status(lab.url);
    assert.deepEqual(
      after.peers.filter((p) => p.verified).map((p) => p.name).sort(),
      ["pc1", "pc2"],
    );
    assert.equal(after.ended, null, "2 real PCs of 3 expected: the run goes on");
    for (const s of liars) s.close();
  } finally {
    await lab.close();
  }
});

Deno.test("hostile: a session cannot take another PC's MAC or id, nor get it recorded imaged", async () => {
  const history = await Deno.makeTempFile({ prefix: "cascade-hostile-", suffix: ".sqlite" });
  const real = await hostileLab(2 * 1024 * 1024, ["--history", history, "--enrol", "all"]);
  try {
    const VICTIM = "52:54:00:00:00:21";
    const HONEST = "52:54:00:00:00:01";
    // The victim PC asks for its boot script from its own address, then is slow to come up.
    assert.equal(
      (await rawGet(real.url, "/boot/ipxe?mac=52-54-00-00-00-21", "127.0.0.21")).status,
      200,
    );
    // The honest PC netboots from 127.0.0.1 and its client names its MAC.
    assert.equal(
      (await rawGet(real.url, "/boot/ipxe?mac=52-54-00-00-00-01", "127.0.0.1")).status,
      200,
    );
    startHonest(real, []);
    real.client("pc1", real.url, ["--mac", HONEST]);
    await real.until(
      real.url,
      (s) => s.peers.some((p) => p.name === "pc1" && p.mac === HONEST),
      "pc1 bound",
    );

    const attacker = "127.0.0.22";
    const tries: [string, Record<string, unknown>, RegExp][] = [
      ["victim's MAC", { mac: VICTIM, complete: true, held: 8 }, /booted from another address/],
      [
        "a connected PC's MAC",
        { mac: HONEST },
        /booted from another address|belongs to connected peer "pc1"/,
      ],
    ];
    for (const [what, extra, refusal] of tries) {
      const s = await rawSession(real.url, attacker);
      s.send(clientHello("evil", real.imageId, extra));
      const err = await s.next((m) => m.type === "error");
      assert.match(String(err.message), refusal, what);
      await s.closed;
    }
    // The honest PC's name is taken while it is connected, and from elsewhere ever after.
    const s = await rawSession(real.url, attacker);
    s.send(clientHello("pc1", real.imageId));
    const welcome = await s.next((m) => m.type === "welcome");
    assert.notEqual(welcome.id, "pc1");
    s.send({ type: "verified", ok: true, bad: [], seconds: 1 });
    assert.match(
      String((await s.next((m) => m.type === "error")).message),
      /Unexpected "verified"/,
    );

    await assertHonestImaged(real, ["pc1"]);
    // The victim still gets the imaging script; the honest PC (imaged, proved) boots its disk.
    assert.match(
      (await rawGet(real.url, "/boot/ipxe?mac=52-54-00-00-00-21", "127.0.0.21")).body,
      /cascade\.image=/,
    );
    assert.match(
      (await rawGet(real.url, "/boot/ipxe?mac=52-54-00-00-00-01", "127.0.0.1")).body,
      /sanboot|exit/,
    );
    const victim = (await real.status(real.url)).peers.find((p) => p.mac === VICTIM);
    assert.equal(victim?.verified, false);
  } finally {
    await real.close();
    await Deno.remove(history).catch(() => {});
  }
});
