// The master's netboot answers, end to end with real processes: an enrolled PC is imaged at its
// first network boot, boots its own disk afterwards (even after a master restart), and is
// imaged again once an admin asks for it; a PC that is not enrolled boots its own disk until an
// admin opens an enrolment window.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fakeNetbootBuild, makeLab, waitExit } from "./lab_kit.ts";

const MAC = "52:54:00:12:34:56";

async function bootScript(url: string, mac = MAC): Promise<string> {
  const res = await fetch(`${url}/boot/ipxe?mac=${mac.replaceAll(":", "-")}`);
  assert.equal(res.status, 200);
  return await res.text();
}

Deno.test("netboot: image at first boot, local disk after, again after a re-image", async () => {
  const lab = await makeLab(2 * 1024 * 1024);
  try {
    const netboot = join(lab.dir, "netboot");
    await fakeNetbootBuild(netboot);
    const history = join(lab.dir, "history.sqlite");
    const groups = join(lab.dir, "groups.conf");
    await Deno.writeTextFile(groups, `[lab]\nmac = ${MAC} pc01\nafter = reboot\n`);
    const flags = [
      "--mode",
      "classic",
      "--netboot",
      netboot,
      "--history",
      history,
      "--groups",
      groups,
    ];
    const tokens = ["--token", "t0k", "--server-token", "s3rv"];
    let url = await lab.master([...flags, "--expect", "1", ...tokens, "--linger", "0"]);

    // First boot: the PC is unknown, so its script images it, pinned to this image.
    const first = await bootScript(url);
    assert.match(first, new RegExp(`cascade\\.image=${lab.imageId}`));
    assert.match(first, /cascade\.master=http:\/\/10\.0\.0\.1:8080/);
    assert.match(first, /cascade\.target=\/dev\/vda cascade\.after=reboot/);
    assert.doesNotMatch(first, /t0k|s3rv|token/, "no credential in a boot script");
    const booting = await lab.status(url);
    assert.equal(booting.peers.find((p) => p.mac === MAC)?.state, "booting");

    lab.fake("fake", url, ["--server-token", "s3rv"]);
    lab.client("pc", url, ["--after", "poweroff"]); // a PC needs no credential
    assert.equal(await waitExit(lab, "master"), 0);
    assert.ok(await lab.matches("pc"));

    // Its next boot (a new master process, same history) boots the local disk.
    url = await lab.master([...flags, ...tokens], "master2");
    assert.match(await bootScript(url), /imaged with the current image: booting its local disk/);
    const stranger = "52:54:00:00:00:01";
    assert.match(await bootScript(url, stranger), /not enrolled for imaging/);
    assert.deepEqual((await lab.status(url)).unenrolled.map((u) => u.mac), [stranger]);

    // The admin asks for it again: the token is checked, then its next boot images it.
    const reimage = (auth: string) =>
      fetch(`${url}/api/v1/admin/reimage`, {
        method: "POST",
        headers: { authorization: `Bearer ${auth}`, "content-type": "application/json" },
        body: JSON.stringify({ mac: MAC.replaceAll(":", "-") }),
      });
    const denied = await reimage("wrong");
    assert.equal(denied.status, 403);
    await denied.body?.cancel();
    const ok = await reimage("t0k");
    assert.deepEqual(await ok.json(), { mac: MAC, forgotten: 1 });
    assert.match(await bootScript(url), new RegExp(`cascade\\.image=${lab.imageId}`));

    // "Image every new PC that boots in the next 10 minutes": the stranger is enrolled.
    const enrol = await fetch(`${url}/api/v1/admin/enrol`, {
      method: "POST",
      headers: { authorization: "Bearer t0k", "content-type": "application/json" },
      body: JSON.stringify({ minutes: 10 }),
    });
    assert.deepEqual(await enrol.json(), { enrolling: true, seconds: 600, group: null });
    assert.match(await bootScript(url, stranger), new RegExp(`cascade\\.image=${lab.imageId}`));
  } finally {
    await lab.close();
  }
});
