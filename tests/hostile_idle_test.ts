// Hostile LAN, idle connections: a student opens a thousand sockets to a chunk server and to
// the master, half sending nothing and half a request head cut short, and holds them. Deno.serve
// alone kept every one (no cap on connections, no header timeout: a chunk server's descriptors
// filled); now every port counts connections from their accept (a chunk server 64 an address,
// the master 16) and closes one that has not sent its whole first head within 10 s. Honest
// fetches are answered meanwhile and the honest PCs image.
import assert from "node:assert/strict";
import {
  assertHonestImaged,
  fakeUrlOf,
  hostileLab,
  idleRequests,
  startHonest,
} from "./hostile_kit.ts";

async function until(pred: () => boolean, what: string, ms = 30_000) {
  for (const deadline = Date.now() + ms; !pred();) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("hostile: a thousand idle sockets are capped and timed out on a chunk server and the master", async () => {
  const lab = await hostileLab(2 * 1024 * 1024);
  const floods: ReturnType<typeof idleRequests>[] = [];
  try {
    startHonest(lab, []);
    const fakeUrl = await fakeUrlOf(lab);
    const fds = (name: string) =>
      [...Deno.readDirSync(`/proc/${lab.procs.procs.get(name)!.child.pid}/fd`)].length;
    const before = { fake: fds("fake"), master: fds("master") };
    const targets: [string, string][] = [["fake", fakeUrl], ["master", lab.url]];
    for (const [name, url] of targets) {
      floods.push(
        idleRequests(url, 500, "127.0.0.81", false),
        idleRequests(url, 500, "127.0.0.81", true),
      );
      // Past its cap an address's connections are closed at once, unread.
      const cap = name === "fake" ? 64 : 16;
      const flood = floods.slice(-2);
      await until(() => flood[0].open() + flood[1].open() <= cap, `${name}: the flood capped`);
    }
    const held = { fake: fds("fake"), master: fds("master") };
    // Honest requests are answered meanwhile (from another address).
    const health = await fetch(`${fakeUrl}/v1/health`);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).imageId, lab.imageId);
    const status = await fetch(`${lab.url}/api/v1/status`);
    assert.equal(status.status, 200);
    assert.equal((await status.json()).imageId, lab.imageId);
    // What is left of the flood sent no whole head within 10 s: closed.
    await until(() => floods.every((f) => f.open() === 0), "the idle sockets closed", 30_000);
    console.log(
      `descriptors before ${JSON.stringify(before)}, holding the flood ${JSON.stringify(held)}, ` +
        `after ${JSON.stringify({ fake: fds("fake"), master: fds("master") })}`,
    );
    assert.ok(held.fake < before.fake + 2 * 64, `the fake held ${held.fake} descriptors`);
    for (const name of ["master", "fake"]) assert.ok(lab.procs.running(name), name);
    for (const pc of ["pc1", "pc2"]) lab.client(pc, lab.url);
    await assertHonestImaged(lab, ["pc1", "pc2"]);
  } finally {
    for (const f of floods) f.close();
    await lab.close();
  }
});
