// End to end: one master serves two images at once, each to its own PCs, as real processes on
// loopback. Every disk must equal its own image byte for byte, and each run's cascade must stay
// within its image (no PC ever served by a PC of the other image).
import assert from "node:assert/strict";
import { join } from "node:path";
import { sliceImage } from "../imagetools/mod.ts";
import { makeSampleImage, sha256File } from "../roles/demo/mod.ts";
import { openHistory, type RunStatus } from "../roles/master/mod.ts";
import { fakeNetbootBuild, makeLab, waitExit } from "./lab_kit.ts";

const MiB = 1024 * 1024;

Deno.test("two images at once: games to 3 PCs, office to 2, each disk byte-identical to its image", async () => {
  const lab = await makeLab(6 * MiB);
  try {
    const officeGolden = join(lab.dir, "office.img");
    await makeSampleImage(officeGolden, 5 * MiB);
    const office = await sliceImage({
      image: officeGolden,
      out: join(lab.dir, "office-slices"),
      chunkSize: 256 * 1024,
    });
    const statusFile = join(lab.dir, "status.json");
    const url = await lab.procs.startMaster([
      "--image",
      `games=${lab.slices}`,
      "--image",
      `office=${join(lab.dir, "office-slices")}`,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--expect",
      "games=3,office=2",
      "--linger",
      "1",
      "--status-file",
      statusFile,
    ]);
    lab.fake("fake-games", url);
    lab.procs.start("fake-office", [
      "fake-server",
      "--master",
      url,
      "--slices",
      join(lab.dir, "office-slices"),
      "--name",
      "fake-office",
      "--listen",
      "127.0.0.1",
    ]);
    const games = ["pc-g1", "pc-g2", "pc-g3"];
    const offices = ["pc-o1", "pc-o2"];
    // As netboot pins it on the kernel command line: each PC asks for its image by id.
    for (const n of games) lab.client(n, url, ["--image-id", lab.imageId]);
    for (const n of offices) lab.client(n, url, ["--image-id", office.imageId]);
    assert.equal(await waitExit(lab, "master"), 0);
    for (const n of [...games, ...offices]) {
      assert.equal(await waitExit(lab, n, 20_000), 0, `${n} exits 0`);
    }
    for (const n of games) assert.ok(await lab.matches(n), `${n} holds the games image`);
    for (const n of offices) {
      assert.equal(
        await sha256File(lab.disk(n), office.manifest.size),
        office.manifest.sha256,
        `${n} holds the office image`,
      );
    }
    const { runs } = JSON.parse(await Deno.readTextFile(statusFile)) as { runs: RunStatus[] };
    assert.deepEqual(runs.map((r) => [r.imageId, r.totals.clients, r.totals.verified]), [
      [lab.imageId, 3, 3],
      [office.imageId, 2, 2],
    ]);
    const [g, o] = runs;
    const within = (run: RunStatus, names: string[]) => {
      for (const p of run.peers.filter((p) => p.role === "client")) {
        assert.ok(names.includes(p.id), `${p.id} in its image's run`);
        for (const s of p.servedBy) assert.ok(names.includes(s), `${p.id} served by ${s}`);
      }
    };
    within(g, ["fake-games", ...games]);
    within(o, ["fake-office", ...offices]);
    assert.match(await lab.procs.logText("master"), /master\.image image=office imageId=/);
  } finally {
    await lab.close();
  }
});

Deno.test("two images with netboot: each group's PCs boot with its image; re-image a group by API", async () => {
  const lab = await makeLab(2 * MiB);
  try {
    const officeGolden = join(lab.dir, "office.img");
    await makeSampleImage(officeGolden, 3 * MiB);
    const officeSlices = join(lab.dir, "office-slices");
    const office = await sliceImage({ image: officeGolden, out: officeSlices });
    const netboot = join(lab.dir, "netboot");
    await fakeNetbootBuild(netboot);
    const [G1, O1, O2] = ["52:54:00:00:0a:01", "52:54:00:00:0b:01", "52:54:00:00:0b:02"];
    const groups = join(lab.dir, "groups.conf");
    await Deno.writeTextFile(
      groups,
      `[games]\nmac = ${G1}\n[office]\nimage = office\nmacs = ${O1}, ${O2}\n`,
    );
    // O1 holds the office image already, O2 the games image (it moved rooms).
    const historyFile = join(lab.dir, "history.sqlite");
    const history = openHistory(historyFile);
    history.markImaged(O1, office.imageId, Date.now());
    history.markImaged(O2, lab.imageId, Date.now());
    history.close();
    const url = await lab.procs.startMaster([
      "--image",
      `games=${lab.slices}`,
      "--image",
      `office=${officeSlices}`,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--netboot",
      netboot,
      "--groups",
      groups,
      "--history",
      historyFile,
      "--token",
      "t0k",
    ]);
    const boot = async (mac: string) =>
      await (await fetch(`${url}/boot/ipxe?mac=${mac.replaceAll(":", "-")}`)).text();
    assert.match(await boot(G1), new RegExp(`cascade\\.image=${lab.imageId}`));
    assert.match(await boot(O2), new RegExp(`cascade\\.image=${office.imageId}`));
    assert.match(await boot(O1), /imaged with the current image: booting its local disk/);
    // Each boot shows in its image's run.
    const status = async (q: string) =>
      await (await fetch(`${url}/api/v1/status${q}`)).json() as RunStatus;
    const macs = (s: RunStatus) => s.peers.map((p) => p.mac ?? p.id);
    assert.deepEqual(macs(await status("")), [G1]);
    assert.deepEqual(macs(await status("?image=office")), [O2]);
    // The details panel shows each boot answer the PC got, from the history (asked
    // before O1 boots from this same address: one address, one booting PC).
    const o2 = await (await fetch(`${url}/api/v1/peers/${O2}?image=office`)).json();
    assert.deepEqual(
      o2.boot.map((b: Record<string, unknown>) => [b.answer, b.group, b.address]),
      [["image", "office", "127.0.0.1"]],
    );
    const reimage = await fetch(`${url}/api/v1/admin/reimage`, {
      method: "POST",
      headers: { authorization: "Bearer t0k" },
      body: JSON.stringify({ group: "office" }),
    });
    assert.equal(reimage.status, 200);
    assert.deepEqual(await reimage.json(), { group: "office", forgotten: 2 });
    assert.match(await boot(O1), new RegExp(`cascade\\.image=${office.imageId}`));
    // The action is in the history with who took it and how they signed in.
    const log = await (await fetch(`${url}/api/v1/admin/log`)).json();
    assert.deepEqual(
      log.actions.map((a: Record<string, unknown>) => [a.action, a.by, a.session, a.detail]),
      [["reimage", "token@127.0.0.1", "token", '{"group":"office","forgotten":2}']],
    );
    const unknown = await fetch(`${url}/api/v1/admin/reimage`, {
      method: "POST",
      headers: { authorization: "Bearer t0k" },
      body: JSON.stringify({ group: "art" }),
    });
    assert.equal(unknown.status, 400);
    assert.deepEqual(await unknown.json(), {
      error: 'Invalid "reimage" request: Unknown group "art": not in the groups file',
    });
    lab.procs.kill("master");
  } finally {
    await lab.close();
  }
});
