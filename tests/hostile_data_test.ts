// Hostile LAN, the data path: a host the master did not send to a server gets no chunk from it,
// so it can neither copy the image from the PCs nor eat a server's (rate-limited) upload.
import assert from "node:assert/strict";
import { assertHonestImaged, hostileLab, startHonest } from "./hostile_kit.ts";

Deno.test("hostile: chunk servers refuse requests without the master's ticket", async () => {
  const lab = await hostileLab(4 * 1024 * 1024);
  try {
    startHonest(lab, ["pc1", "pc2"], ["--rate-limit", "8MB/s"]);
    // Every serving peer's data URL is on the public status: the fake server and relay PCs.
    const status = await lab.until(
      lab.url,
      (s) => s.peers.filter((p) => p.url).length >= 2,
      "two data URLs on the status",
    );
    const urls = status.peers.flatMap((p) => (p.url ? [p.url] : []));
    const forged = `${"00".repeat(16)}.${"11".repeat(32)}`;
    for (const url of urls) {
      for (const path of ["/v1/chunks/1", "/v1/image", "/v1/stream?from=0&to=4"]) {
        for (const auth of [undefined, `Bearer ${forged}`, "Bearer x"]) {
          const res = await fetch(`${url}${path}`, {
            headers: auth ? { authorization: auth } : {},
          });
          assert.ok(res.status === 401 || res.status === 400, `${url}${path}: ${res.status}`);
          assert.match(await res.text(), /no valid ticket/);
        }
      }
    }
    await assertHonestImaged(lab, ["pc1", "pc2"]);
  } finally {
    await lab.close();
  }
});
