// A master with two images: each request and control session lands in its image's run.
import assert from "node:assert/strict";
import { createMasterApp } from "./app.ts";
import { MasterCore } from "./core.ts";
import { Site } from "./site.ts";
import { helloMessage, IMAGE_ID, SAMPLE_MANIFEST, TEST_PROVER } from "./testkit.ts";
import type { MasterMessage } from "../protocol/mod.ts";

const OFFICE_ID = "cd".repeat(32);
const TOKEN = "s3cret";

function twoImages() {
  const time = { now: 1000 };
  const sent: { to: string; msg: MasterMessage }[] = [];
  const closed: string[] = [];
  const core = (imageId: string) =>
    new MasterCore({
      mode: "classic",
      linger: 30,
      fanout: 1,
      imageId,
      totalChunks: 64,
      imageBytes: 64 << 20,
      token: TOKEN,
    }, {
      now: () => time.now,
      send: (s, msg) => sent.push({ to: (s as { name: string }).name, msg }),
      close: (s) => closed.push((s as { name: string }).name),
      log: () => {},
      random: (bytes) => "0".repeat(bytes * 2),
      prover: TEST_PROVER,
    });
  const games = core(IMAGE_ID);
  const office = core(OFFICE_ID);
  const bytes = (name: string) => new TextEncoder().encode(`{"name":"${name}"}`);
  const site = new Site([
    { name: "games", core: games, manifest: SAMPLE_MANIFEST, manifestBytes: bytes("games") },
    {
      name: "office",
      core: office,
      manifest: { ...SAMPLE_MANIFEST, name: "office.img" },
      manifestBytes: bytes("office"),
    },
  ]);
  const app = createMasterApp({ site, log: () => {}, now: () => time.now });
  const sessions = new Map<string, { name: string }>();
  const hello = (name: string, role: "client" | "fake", imageId: string) => {
    const key = { name };
    sessions.set(name, key);
    site.connect(key, "10.0.0.1");
    // A fake server of capacity 1: each run's batch goes out at its first client.
    site.message(key, helloMessage(name, role, { imageId, capacity: 1 }));
  };
  const to = (name: string) => sent.filter((s) => s.to === name).map((s) => s.msg);
  return { site, games, office, app, hello, to, closed, sessions };
}

Deno.test("site: each hello joins its image's run; an image no run serves is refused by name", () => {
  const t = twoImages();
  t.hello("fake-games", "fake", IMAGE_ID);
  t.hello("fake-office", "fake", OFFICE_ID);
  t.hello("pc-g1", "client", IMAGE_ID);
  t.hello("pc-o1", "client", OFFICE_ID);
  assert.deepEqual([...t.games.peers.keys()], ["fake-games", "pc-g1"]);
  assert.deepEqual([...t.office.peers.keys()], ["fake-office", "pc-o1"]);
  // Each run assigns from its own queues: the office PC is served by the office fake server.
  assert.deepEqual(t.to("pc-o1").map((m) => m.type), ["welcome", "assign"]);
  assert.equal((t.to("pc-o1")[1] as { server: { id: string } }).server.id, "fake-office");
  assert.equal((t.to("pc-g1")[1] as { server: { id: string } }).server.id, "fake-games");
  t.hello("stranger", "client", "ef".repeat(32));
  assert.deepEqual(t.to("stranger"), [{
    type: "error",
    message: `Peer holds image "efefefefefef" but this master serves games (${
      IMAGE_ID.slice(0, 12)
    }), office (${OFFICE_ID.slice(0, 12)})`,
  }]);
  assert.deepEqual(t.closed, ["stranger"]);
  // A session that leaves leaves its own run (never assigned: its record goes, peer_bound.ts).
  t.site.disconnect(t.sessions.get("pc-o1")!);
  assert.equal(t.office.peers.has("pc-o1"), false);
  assert.equal(t.games.peers.get("pc-g1")!.connected, true);
});

Deno.test("site: manifest, image, status, peers and feed per ?image=; the first by default", async () => {
  const t = twoImages();
  t.hello("pc-g1", "client", IMAGE_ID);
  t.hello("pc-o1", "client", OFFICE_ID);
  const text = async (path: string) => await (await t.app.request(path)).text();
  assert.equal(await text("/api/v1/manifest"), '{"name":"games"}');
  assert.equal(await text("/api/v1/manifest?image=office"), '{"name":"office"}');
  assert.equal(await text(`/api/v1/manifest?image=${OFFICE_ID}`), '{"name":"office"}');
  const office = await t.app.request("/api/v1/manifest?image=office");
  assert.equal(office.headers.get("x-cascade-image"), OFFICE_ID);
  const img = await (await t.app.request("/api/v1/image?image=office")).json();
  assert.deepEqual([img.id, img.name], [OFFICE_ID, "office.img"]);
  const missing = await t.app.request("/api/v1/status?image=art");
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), {
    error: `No image "art" on this master: it serves games (${IMAGE_ID.slice(0, 12)}), office (${
      OFFICE_ID.slice(0, 12)
    })`,
  });
  const s = await (await t.app.request("/api/v1/status?image=office")).json();
  assert.deepEqual([s.imageId, s.peers.map((p: { id: string }) => p.id)], [OFFICE_ID, ["pc-o1"]]);
  const first = await (await t.app.request("/api/v1/status")).json();
  assert.deepEqual(first.peers.map((p: { id: string }) => p.id), ["pc-g1"]);
  assert.equal((await t.app.request("/api/v1/peers/pc-o1")).status, 404);
  assert.equal((await t.app.request("/api/v1/peers/pc-o1?image=office")).status, 200);
  const runs = await (await t.app.request("/api/v1/runs")).json();
  assert.deepEqual(runs.runs.map((r: Record<string, unknown>) => [r.name, r.imageId, r.clients]), [
    ["games", IMAGE_ID, 1],
    ["office", OFFICE_ID, 1],
  ]);
  // The feed of a run names it and links every run (the page's run bar).
  const feed = await (await t.app.request("/api/v1/feed?image=office")).json();
  assert.equal(feed.run.name, "office");
  assert.deepEqual(Object.keys(feed.peers), ["pc-o1"]);
  assert.deepEqual(feed.run.site.map((r: { name: string }) => r.name), ["games", "office"]);
  const page = await text("/?image=office");
  assert.match(page, /"name":"office"/);
});

Deno.test("site: GET /metrics labels each run's series by image; ?image= gives one run", async () => {
  const t = twoImages();
  t.hello("pc-g1", "client", IMAGE_ID);
  t.hello("pc-o1", "client", OFFICE_ID);
  t.hello("pc-o2", "client", OFFICE_ID);
  const all = (await (await t.app.request("/metrics")).text()).split("\n");
  const waiting = all.filter((l) =>
    l.startsWith("cascade_peers{") && l.includes('role="client",state="waiting"')
  );
  assert.deepEqual(waiting, [
    'cascade_peers{image="games",role="client",state="waiting"} 1',
    'cascade_peers{image="office",role="client",state="waiting"} 2',
  ]);
  assert.equal(all.filter((l) => l === "# TYPE cascade_peers gauge").length, 1);
  assert.ok(all.includes(`cascade_image_bytes{image="office",id="${OFFICE_ID}"} ${64 << 20}`));
  const office = await (await t.app.request("/metrics?image=office")).text();
  assert.ok(!office.includes('image="games"'));
  assert.match(office, /\ncascade_peers\{image="office",role="client",state="waiting"\} 2\n/);
  assert.equal((await t.app.request("/metrics?image=art")).status, 404);
});

Deno.test("site: admin pause with an image pauses that run only; without, every run", async () => {
  const t = twoImages();
  const admin = (action: string, body?: string) =>
    t.app.request(`/api/v1/admin/${action}`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body,
    });
  const paused = () => [t.games, t.office].map((c) => c.scheduler.snapshot().paused);
  const one = await admin("pause", '{"image":"office"}');
  assert.equal(one.status, 200);
  assert.deepEqual(await one.json(), {
    paused: true,
    draining: false,
    ended: null,
    runs: [{ image: "office", paused: true, draining: false, ended: null }],
  });
  assert.deepEqual(paused(), [false, true]);
  const all = await admin("pause");
  assert.deepEqual(paused(), [true, true]);
  assert.equal((await all.json()).runs.length, 2);
  const bad = await admin("drain", '{"image":"art"}');
  assert.equal(bad.status, 404);
  assert.match((await bad.json()).error, /^Invalid "drain" request: no image "art" \(this master/);
  await admin("end", '{"image":"games","reason":"lesson"}');
  assert.deepEqual([t.games.ended, t.office.ended, t.site.ended], ["lesson", null, false]);
  const again = await admin("end", '{"image":"games"}');
  assert.equal(again.status, 409);
  await admin("end");
  assert.equal(t.site.ended, true);
});

Deno.test("site: image names are checked once, at start", () => {
  const t = twoImages();
  const run = t.site.runs[0];
  assert.throws(() => new Site([]), /A master needs at least one image/);
  assert.throws(
    () => new Site([{ ...run, name: "my games" }]),
    /Image name "my games" must be 1 to 64 of A-Z a-z 0-9 \. _ -/,
  );
  assert.throws(() => new Site([run, { ...run }]), /Image name "games" is given twice/);
  assert.throws(
    () => new Site([run, { ...run, name: "games2" }]),
    /Images "games" and "games2" are the same image/,
  );
});

Deno.test("site: once the first image's run has ended, a PC of the other image still joins its run", () => {
  const t = twoImages();
  t.games.end("games done");
  assert.deepEqual([t.games.ended, t.office.ended], ["games done", null]);
  // A session waiting for its hello is held by a run that is still on: the games run's end
  // never reaches it.
  const key = { name: "pc-o9" };
  t.site.connect(key, "10.0.0.9");
  t.site.message(key, helloMessage("pc-o9", "client", { imageId: OFFICE_ID }));
  assert.deepEqual(t.to("pc-o9").map((m) => m.type), ["welcome"]);
  assert.equal(t.office.peers.get("pc-o9")!.connected, true);
  // A games PC that comes now hears that its run has ended.
  t.hello("pc-g9", "client", IMAGE_ID);
  assert.deepEqual(t.to("pc-g9"), [{ type: "end", reason: "games done" }]);
});
