// End-to-end tests of the seed's four roles: real master, fake server, servers and clients as
// processes on loopback, files standing in for disks.
import assert from "node:assert/strict";
import { logEvents, makeLab, waitExit } from "./lab_kit.ts";
import { PROTOCOL_VERSION } from "../roles/protocol/mod.ts";
import type { RunStatus } from "../roles/master/mod.ts";

const MiB = 1024 * 1024;

Deno.test("classic: 10 clients, capacities 2 and 3, all disks identical, FIFO assignments", async () => {
  const lab = await makeLab(8 * MiB);
  try {
    const url = await lab.master(["--mode", "classic", "--expect", "10", "--linger", "3"]);
    lab.fake("fake", url, ["--capacity", "2"]);
    // The fake server holds the manifest before any PC asks: every PC takes it from a peer.
    await lab.until(url, (st) => st.peers.some((p) => p.id === "fake"), "the fake server joins");
    const names = Array.from({ length: 10 }, (_, i) => `pc-${i + 1}`);
    for (const n of names) lab.client(n, url, ["--capacity", "3"]);
    assert.equal(await waitExit(lab, "master"), 0);
    for (const n of names) {
      assert.equal(await waitExit(lab, n, 20_000), 0, `${n} exits 0`);
      assert.ok(await lab.matches(n), `${n}'s disk equals the golden image`);
      const got = logEvents(await lab.procs.logText(n), `client[${n}].manifest`);
      assert.equal(got.length, 1, n);
      assert.notEqual(got[0].from, url, `${n} took the manifest from a peer, not the master`);
      assert.equal(got[0].id, lab.imageId, n);
    }
    // Replay the master's log: every batch takes the oldest waiting clients, in order, and
    // never more than the server's capacity.
    const log = await lab.procs.logText("master");
    const lines = log.split("\n");
    const queue: string[] = [];
    let assigns = 0;
    for (const line of lines) {
      const [join] = logEvents(line, "master.join");
      if (join && join.role === "client") queue.push(join.peer);
      const [a] = logEvents(line, "master.assign");
      if (!a) continue;
      assigns++;
      const clients = a.clients.split(",");
      assert.deepEqual(clients, queue.slice(0, clients.length), `FIFO at: ${line}`);
      queue.splice(0, clients.length);
      assert.ok(clients.length <= (a.server === "fake" ? 2 : 3), `capacity at: ${line}`);
    }
    assert.ok(assigns >= 4, `10 clients over servers of 2 and 3 need several batches (${assigns})`);
    assert.deepEqual(queue, [], "no client left waiting");
  } finally {
    await lab.close();
  }
});

Deno.test("a server killed mid-transfer: its client resumes elsewhere from its verified chunks", async () => {
  const lab = await makeLab(8 * MiB);
  try {
    const url = await lab.master(["--mode", "classic", "--expect", "1", "--linger", "0"]);
    // 2 MB/s: the 6 MiB of non-zero chunks take about 3 s, long enough to cut it halfway.
    lab.fake("slow", url, ["--rate-limit", "2MB/s"]);
    lab.client("pc", url);
    const total = lab.manifest.chunks.length;
    await lab.until(
      url,
      (s) => (s.peers.find((p) => p.id === "pc")?.held ?? 0) >= total / 2,
      "half the chunks held",
    );
    lab.procs.kill("slow");
    lab.server("server", url, lab.golden);
    assert.equal(await waitExit(lab, "master"), 0);
    assert.equal(await waitExit(lab, "pc", 20_000), 0);
    assert.ok(await lab.matches("pc"));
    const [fin] = logEvents(await lab.procs.logText("pc"), "client[pc].finished");
    const chunk = lab.manifest.chunkSize;
    const nonZero = lab.manifest.chunks.filter((c) => !c.zero).length * chunk;
    // Only chunks in flight when the server died (4 requests) can be fetched twice.
    assert.ok(Number(fin.refetched) <= 4 * chunk, `refetched ${fin.refetched}`);
    assert.ok(Number(fin.received) <= nonZero + 4 * chunk, `received ${fin.received}`);
    assert.equal(fin.servers, "slow,server");
  } finally {
    await lab.close();
  }
});

Deno.test("a server serving corrupted bytes: the bad chunk never reaches the disk", async () => {
  const lab = await makeLab(4 * MiB);
  try {
    // A copy of the golden image with one byte flipped in chunk 5, served without checking.
    const bad = `${lab.dir}/bad.img`;
    const bytes = await Deno.readFile(lab.golden);
    const at = 5 * lab.manifest.chunkSize + 100;
    assert.equal(lab.manifest.chunks[5].zero, false);
    bytes[at] ^= 0xff;
    await Deno.writeFile(bad, bytes);
    const url = await lab.master(["--mode", "classic", "--expect", "1", "--linger", "0"]);
    lab.server("liar", url, bad, ["--trust", "--capacity", "1"]);
    await lab.until(url, (s) => s.queues.servers.length === 1, "the liar registered");
    lab.client("pc", url);
    await lab.until(
      url,
      (s) => (s.peers.find((p) => p.id === "pc")?.failures.length ?? 0) > 0,
      "the client rejected a chunk",
    );
    // Chunk 5 on the client's disk is still what it was before (zeros), never the bad bytes.
    const disk = await Deno.open(lab.disk("pc"));
    const got = new Uint8Array(lab.manifest.chunkSize);
    await disk.seek(5 * lab.manifest.chunkSize, Deno.SeekMode.Start);
    let n = 0;
    while (n < got.length) n += (await disk.read(got.subarray(n))) ?? got.length;
    disk.close();
    assert.ok(got.every((b) => b === 0), "the corrupted chunk was not written");
    lab.fake("fake", url);
    assert.equal(await waitExit(lab, "master"), 0);
    assert.ok(await lab.matches("pc"));
    const status = JSON.parse(await Deno.readTextFile(`${lab.dir}/status.json`));
    const pc = status.peers.find((p: { id: string }) => p.id === "pc");
    assert.equal(pc.failures[0].reason, "bad-chunk");
    assert.equal(pc.failures[0].server, "liar");
    assert.equal(pc.servedBy.at(-1), "fake");
  } finally {
    await lab.close();
  }
});

Deno.test("a client killed mid-run: the others are unaffected", async () => {
  const lab = await makeLab(8 * MiB);
  try {
    const url = await lab.master(["--mode", "classic", "--expect", "3", "--linger", "3"]);
    lab.fake("fake", url, ["--capacity", "4", "--rate-limit", "8MB/s"]);
    for (const n of ["a", "b", "c", "d"]) lab.client(n, url);
    // Each with bytes reported: a PC gone before any is not kept (roles/master/peer_bound.ts).
    const going = (s: RunStatus) => s.peers.filter((p) => p.state === "receiving" && p.bytes > 0);
    await lab.until(url, (s) => going(s).length === 4, "all four receiving");
    lab.procs.kill("b");
    assert.equal(await waitExit(lab, "master"), 0);
    for (const n of ["a", "c", "d"]) assert.ok(await lab.matches(n), `${n} imaged`);
    const status = JSON.parse(await Deno.readTextFile(`${lab.dir}/status.json`));
    assert.equal(status.peers.find((p: { id: string }) => p.id === "b").state, "left");
  } finally {
    await lab.close();
  }
});

Deno.test("linger releases a partial batch", async () => {
  const lab = await makeLab(2 * MiB);
  try {
    const url = await lab.master(["--mode", "classic", "--expect", "1", "--linger", "0.5"]);
    lab.fake("fake", url, ["--capacity", "3"]);
    lab.client("only", url);
    assert.equal(await waitExit(lab, "master"), 0);
    assert.ok(await lab.matches("only"));
    const [a] = logEvents(await lab.procs.logText("master"), "master.assign");
    assert.deepEqual([a.server, a.clients, a.partial], ["fake", "only", "true"]);
  } finally {
    await lab.close();
  }
});

Deno.test("malformed control messages get an error; the master keeps serving everyone else", async () => {
  const lab = await makeLab(2 * MiB);
  try {
    const url = await lab.master(["--mode", "classic", "--expect", "2", "--linger", "0.2"]);
    const ws = url.replace("http", "ws") + "/api/v1/control";
    const hello = {
      type: "hello",
      version: PROTOCOL_VERSION,
      role: "client",
      name: "x",
      imageId: lab.imageId,
      capacity: 3,
      held: 0,
      complete: false,
    };
    // Each is answered with an error message, then closed with 1008 (policy) ...
    const junk: [string, RegExp][] = [
      ["{oops", /not JSON/],
      [JSON.stringify({ ...hello, capacity: "three" }), /field "capacity" \("three"\)/],
      [JSON.stringify({ type: "teleport" }), /Unknown message type "teleport"/],
      [JSON.stringify({ type: "received" }), /before "hello"/],
    ];
    const answer = (text: string) =>
      new Promise<{ got: string; code: number; reason: string }>((resolve, reject) => {
        const sock = new WebSocket(ws);
        let got = "";
        sock.onopen = () => sock.send(text);
        sock.onmessage = (e) => (got = String(e.data));
        sock.onclose = (e) => resolve({ got, code: e.code, reason: e.reason });
        sock.onerror = () => {};
        setTimeout(() => reject(new Error(`no answer to ${text.slice(0, 40)}`)), 10_000);
      });
    const answers = await Promise.all(junk.map(([text]) => answer(text)));
    answers.forEach((a, i) => {
      const msg = JSON.parse(a.got);
      assert.equal(msg.type, "error");
      assert.match(msg.message, junk[i][1]);
      assert.equal(a.code, 1008);
    });
    // ... but a message over the limit is refused at its frame's header: 1009, no message.
    const big = await answer(JSON.stringify({ ...hello, name: "n".repeat(40000) }));
    assert.equal(big.got, "");
    assert.equal(big.code, 1009);
    assert.match(big.reason, /^Message of 40\d{3} bytes or more is larger than 16384 bytes$/);
    lab.fake("fake", url);
    lab.client("p1", url);
    lab.client("p2", url);
    assert.equal(await waitExit(lab, "master"), 0);
    assert.ok(await lab.matches("p1"));
    assert.ok(await lab.matches("p2"));
  } finally {
    await lab.close();
  }
});

Deno.test("a client refuses a target smaller than the image before writing", async () => {
  const lab = await makeLab(2 * MiB);
  try {
    const url = await lab.master(["--mode", "classic"]);
    const small = new Uint8Array(1024 * 1024).fill(7);
    await Deno.writeFile(lab.disk("tiny"), small);
    lab.client("tiny", url);
    assert.equal(await waitExit(lab, "tiny", 30_000), 2); // the disk cannot be used: exit 2
    assert.match(await lab.procs.logText("tiny"), /Cannot use target .*tiny\.img/);
    assert.deepEqual(await Deno.readFile(lab.disk("tiny")), small, "nothing was written");
  } finally {
    await lab.close();
  }
});

Deno.test("a client pinned to another image id refuses the master's image at once", async () => {
  const lab = await makeLab(2 * MiB);
  try {
    const url = await lab.master(["--mode", "classic"]);
    lab.client("pinned", url, ["--image-id", "0".repeat(64)]);
    assert.equal(await waitExit(lab, "pinned", 30_000), 1);
    assert.match(
      await lab.procs.logText("pinned"),
      /Refusing to image from "[^"]+": No image "0{64}" on this master: it serves golden\.img \([0-9a-f]{12}\)/,
    );
    await assert.rejects(Deno.stat(lab.disk("pinned")), "no target was created");
  } finally {
    await lab.close();
  }
});

Deno.test("a master restart: peers reconnect, say what they hold, and the run finishes", async () => {
  const lab = await makeLab(8 * MiB);
  try {
    // A port we can ask the second master for again.
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = String((probe.addr as Deno.NetAddr).port);
    probe.close();
    const flags = ["--mode", "classic", "--expect", "2", "--linger", "1", "--port", port];
    const url = await lab.master(flags);
    lab.fake("fake", url, ["--rate-limit", "4MB/s"]);
    lab.client("p1", url);
    lab.client("p2", url);
    await lab.until(url, (s) => s.totals.receiving === 2, "both receiving");
    lab.procs.kill("master");
    await waitExit(lab, "master", 10_000);
    const again = await lab.master(flags, "master2");
    assert.equal(again, url);
    assert.equal(await waitExit(lab, "master2"), 0);
    assert.ok(await lab.matches("p1"));
    assert.ok(await lab.matches("p2"));
    const joins = logEvents(await lab.procs.logText("master2"), "master.join");
    assert.deepEqual(joins.map((j) => j.peer).sort(), ["fake", "p1", "p2"]);
  } finally {
    await lab.close();
  }
});
