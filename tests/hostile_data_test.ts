// Hostile LAN, the data path: a host the master did not send to a server gets no chunk from it,
// so it can neither copy the image from the PCs nor eat a server's (rate-limited) upload.
import assert from "node:assert/strict";
import { assertHonestImaged, hostileLab, SERVER_TOKEN, startHonest } from "./hostile_kit.ts";
import { clientHello, rawSession } from "./hostile_ws.ts";

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

Deno.test("hostile: a data address is the address the master sees plus a port, never a URL a client names", async () => {
  const lab = await hostileLab(2 * 1024 * 1024);
  try {
    // A client naming another host's URL (to send the PCs it would serve there) is refused.
    const liar = await rawSession(lab.url, "127.0.0.41");
    liar.send(clientHello("liar", lab.imageId, { url: "http://10.9.9.9:80", port: 9 }));
    const err = await liar.next((m) => m.type === "error");
    assert.match(String(err.message), /may not name its data URL/);
    await liar.closed;
    // One giving only a port gets the address the master sees, with that port.
    const honest = await rawSession(lab.url, "127.0.0.42");
    honest.send(clientHello("porter", lab.imageId, { port: 4242 }));
    await honest.next((m) => m.type === "welcome");
    const s = await lab.status(lab.url);
    assert.equal(s.peers.find((p) => p.name === "porter")?.url, "http://127.0.0.42:4242");
    assert.ok(!s.peers.some((p) => p.url?.includes("10.9.9.9")));
    honest.close();
    // A server with the server token may still name its URL (behind NAT or a proxy).
    const srv = await rawSession(lab.url, "127.0.0.43");
    srv.send({
      type: "hello",
      version: 1,
      role: "fake",
      name: "natted",
      imageId: lab.imageId,
      url: "http://127.0.0.43:8081",
      capacity: 1,
      held: lab.manifest.chunks.length,
      complete: true,
      token: SERVER_TOKEN,
    });
    await srv.next((m) => m.type === "welcome");
    srv.close();
    startHonest(lab, ["pc1", "pc2"]);
    await assertHonestImaged(lab, ["pc1", "pc2"]);
  } finally {
    await lab.close();
  }
});
