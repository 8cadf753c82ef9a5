// Which peers the master names as holders of the manifest: connected peers with a URL, a few
// per answer, rotated so that every holder takes its share.
import assert from "node:assert/strict";
import { manifestSources } from "./manifest_sources.ts";
import type { PeerRecord } from "./peer_record.ts";
import { coreHarness, harnessApp, IMAGE_ID } from "./testkit.ts";

const peer = (id: string, url: string | undefined, connected = true) =>
  ({ id, url, connected }) as PeerRecord;

Deno.test("manifestSources: connected peers with a URL, up to n, rotated by turn", () => {
  const peers = [
    peer("a", "http://a"),
    peer("gone", "http://gone", false),
    peer("b", "http://b"),
    peer("nourl", undefined),
    peer("c", "http://c"),
  ];
  assert.deepEqual(manifestSources(peers, 0), ["http://a", "http://b", "http://c"]);
  assert.deepEqual(manifestSources(peers, 0, 2), ["http://a", "http://b"]);
  assert.deepEqual(manifestSources(peers, 1, 2), ["http://b", "http://c"]);
  assert.deepEqual(manifestSources(peers, 2, 2), ["http://c", "http://a"]);
  assert.deepEqual(manifestSources([], 5), []);
});

Deno.test("GET /api/v1/manifest/sources: the image id and the peers that hold it", async () => {
  const h = coreHarness();
  const app = harnessApp(h);
  const ask = async (path = "/api/v1/manifest/sources") => {
    const res = await app.request(path);
    return { status: res.status, body: await res.json() };
  };
  assert.deepEqual(await ask(), { status: 200, body: { id: IMAGE_ID, sources: [] } });
  h.open("fake-server", "10.0.0.2");
  h.hello("fake-server", "fake");
  h.open("pc-01", "10.0.1.1");
  h.hello("pc-01", "client");
  assert.deepEqual(await ask(`/api/v1/manifest/sources?image=${IMAGE_ID}`), {
    status: 200,
    body: { id: IMAGE_ID, sources: ["http://10.0.0.2:9000", "http://10.0.1.1:9000"] },
  });
  h.drop("fake-server");
  assert.deepEqual((await ask()).body.sources, ["http://10.0.1.1:9000"]);
  const none = await ask("/api/v1/manifest/sources?image=other");
  assert.equal(none.status, 404);
  assert.match(none.body.error, /^No image "other" on this master/);
});
