// Hostile LAN, credentials: everything a booting PC can fetch is public, so nothing it fetches
// may act on the run; PCs need no credential; servers need the server token, not the admin one.
import assert from "node:assert/strict";
import {
  ADMIN_TOKEN,
  assertHonestImaged,
  hostileLab,
  SERVER_TOKEN,
  startHonest,
} from "./hostile_kit.ts";
import { waitExit } from "./lab_kit.ts";

Deno.test("hostile: the boot files carry no credential that acts on the run", async () => {
  const lab = await hostileLab();
  try {
    // What any host on the LAN can read, as a PXE-booting PC would.
    const texts: string[] = [];
    for (const path of ["first-stage.ipxe", "ipxe?mac=52-54-00-66-66-66", "pxelinux.cfg/default"]) {
      const res = await fetch(`${lab.url}/boot/${path}`);
      assert.equal(res.status, 200, path);
      texts.push(await res.text());
    }
    const all = texts.join("\n");
    assert.ok(!all.includes(ADMIN_TOKEN) && !all.includes(SERVER_TOKEN), all);
    assert.doesNotMatch(all, /token/);
    // Every word of those files tried as the admin credential: none re-images the room.
    const words = new Set(all.split(/[\s=]+/).filter((w) => w.length >= 4));
    for (const w of words) {
      const res = await fetch(`${lab.url}/api/v1/admin/reimage`, {
        method: "POST",
        headers: { authorization: `Bearer ${w}`, "content-type": "application/json" },
        body: JSON.stringify({ mac: "all" }),
      });
      assert.ok(res.status === 401 || res.status === 403, `"${w}" acted: ${res.status}`);
      await res.body?.cancel();
    }
    // PCs image with no credential at all.
    startHonest(lab, ["pc1", "pc2"]);
    await assertHonestImaged(lab, ["pc1", "pc2"]);
  } finally {
    await lab.close();
  }
});

Deno.test("hostile: a server needs the server token, and the admin token is not it", async () => {
  const lab = await hostileLab();
  try {
    for (
      const [name, extra] of [["none", []], ["admin", ["--server-token", ADMIN_TOKEN]]] as const
    ) {
      lab.fake(name, lab.url, [...extra]);
      assert.equal(await waitExit(lab, name, 30_000), 1);
      assert.match(
        await lab.procs.logText(name),
        /refused by the master: (This master needs the server token|Wrong server token)/,
      );
    }
    assert.deepEqual((await lab.status(lab.url)).queues.servers, []);
    startHonest(lab, ["pc1"]);
    await assertHonestImaged(lab, ["pc1"]);
  } finally {
    await lab.close();
  }
});
