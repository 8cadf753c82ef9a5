// Hostile LAN, a rogue server in a small room: two honest PCs never make the three reporters
// that eject a server, so the rogue stays queued. A PC that failed with it is not handed it
// again at once (before: again and again, as fast as the PC could fail): only after a backoff
// that doubles per failure, and never while another source is free; the run still finishes.
import assert from "node:assert/strict";
import { assertHonestImaged, hostileLab, rogue, SERVER_TOKEN } from "./hostile_kit.ts";
import { logEvents } from "./lab_kit.ts";

Deno.test("hostile: a rogue server two PCs failed with is handed out again only after a backoff", async () => {
  // Classic mode: only the fake and the rogue serve. The fake serves one PC at a time, slowly
  // (4 MiB at 512 KB/s, 8 s a PC): the other PC has only the rogue, which it failed with, for seconds.
  const lab = await hostileLab(4 * 1024 * 1024, ["--mode", "classic"]);
  // 200 and an empty body: every stream fails at once ("the response ended after 0 bytes").
  const bad = await rogue(lab, "rogue", 2, () => new Response(null, { status: 200 }));
  try {
    for (const pc of ["pc1", "pc2"]) lab.client(pc, lab.url);
    await lab.until(lab.url, () => bad.requests() >= 2, "both PCs at the rogue");
    lab.fake("fake", lab.url, [
      "--server-token",
      SERVER_TOKEN,
      "--capacity",
      "1",
      "--rate-limit",
      "512KB/s",
    ]);
    await assertHonestImaged(lab, ["pc1", "pc2"], 90_000);
    const log = await lab.procs.logText("master");
    const toRogue = logEvents(log, "master.assign").filter((a) => a.server === "rogue");
    const failed = logEvents(log, "master.client-failed").filter((f) => f.server === "rogue");
    // Measured on loopback (3 runs each): before, the rogue was handed out 272-276 times while
    // the fake served the other PC (8 s: each PC straight back to it); now 3 (after 2 s, 4 s).
    console.log(`rogue handed out ${toRogue.length} times, ${failed.length} failures reported`);
    assert.ok(toRogue.length <= 12, `the rogue handed out ${toRogue.length} times`);
    assert.ok(lab.procs.running("master"));
    // Two reporters: it was never ejected, the backoff alone kept the PCs off it.
    const servers = (await lab.status(lab.url)).queues.servers;
    assert.ok(servers.some((s) => s.id === "rogue"), "the rogue still queued");
  } finally {
    await bad.close();
    await lab.close();
  }
});
