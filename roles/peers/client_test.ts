// The client role against a fake master on loopback: a Deno.serve that hands out the manifest
// and answers the control WebSocket as a master would (welcome, assign with a ticket, end),
// and a real chunk server over a slices folder. It checks what the client tells the master and
// the bytes on its disk; no process is started and nothing leaves 127.0.0.1.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { LogFields } from "../../imagetools/kit/mod.ts";
import { imageIdOf } from "../../imagetools/mod.ts";
import { openSlicesSource, startChunkServer } from "../data/mod.ts";
import { randomImage, writeSlices } from "../data/testkit.ts";
import { issueTicket, ticketValid } from "../protocol/mod.ts";
import { type ClientOptions, runClient } from "./client.ts";

const CHUNK = 64 * 1024;
const KEY = "ab".repeat(32);
const NONCE = "cd".repeat(16);

type Script = (say: (msg: object) => void, msg: Record<string, unknown>) => void;

/** A master: GET /api/v1/manifest and the control socket, each peer message put to `script`;
 * with `sources`, GET /api/v1/manifest/sources names them as holders of the manifest. */
function fakeMaster(manifestBytes: Uint8Array, script: Script, sources?: string[]) {
  const received: Record<string, unknown>[] = [];
  const asked: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    asked.push(path);
    if (path === "/api/v1/manifest") return new Response(manifestBytes.slice());
    if (path === "/api/v1/manifest/sources" && sources) {
      return Response.json({ id: imageIdOf(manifestBytes), sources });
    }
    if (path !== "/api/v1/control") return new Response("Not found", { status: 404 });
    const { socket, response } = Deno.upgradeWebSocket(req);
    const say = (msg: object) =>
      socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify(msg));
    socket.onmessage = (ev) => {
      const msg = JSON.parse(String(ev.data));
      received.push(msg);
      script(say, msg);
    };
    return response;
  });
  return {
    url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    received,
    asked,
    types: () => received.map((m) => m.type).filter((t) => t !== "progress"),
    close: () => server.shutdown(),
  };
}

function welcome(imageId: string) {
  return {
    type: "welcome",
    id: "pc-1",
    mode: "classic",
    imageId,
    address: "127.0.0.1",
    ticketKey: KEY,
  };
}

/** The master's part in a run that goes well: welcome, assign the lab's server, end. */
function serveAndEnd(lab: { imageId: string; serverUrl: string }): Script {
  return (say, msg) => {
    if (msg.type === "hello") {
      say(welcome(lab.imageId));
      say({
        type: "assign",
        server: { id: "fake", url: lab.serverUrl },
        ticket: issueTicket(KEY, NONCE, "127.0.0.1"),
      });
    }
    if (msg.type === "verified") say({ type: "end", reason: "all 1 expected PCs verified" });
  };
}

async function withLab(
  f: (lab: {
    dir: string;
    image: Uint8Array;
    imageId: string;
    manifestBytes: Uint8Array;
    serverUrl: string;
    options: (masterUrl: string) => ClientOptions;
    events: string[];
  }) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "cascade-client-test-" });
  const image = randomImage(5 * CHUNK + 1234, [[CHUNK, 2 * CHUNK]]);
  const { manifestBytes } = await writeSlices(join(dir, "slices"), image, CHUNK, "lab.img");
  const imageId = imageIdOf(manifestBytes);
  // The server a master would assign: it serves only tickets made with the key the master holds.
  const chunkServer = await startChunkServer({
    source: await openSlicesSource(join(dir, "slices")),
    hostname: "127.0.0.1",
    port: 0,
    tickets: (ticket, address) => ticketValid(KEY, ticket, address),
  });
  const events: string[] = [];
  const log = (event: string, _fields?: LogFields) => void events.push(event);
  try {
    await f({
      dir,
      image,
      imageId,
      manifestBytes,
      serverUrl: chunkServer.url,
      events,
      options: (masterUrl) => ({
        masterUrl,
        target: join(dir, "disk.img"),
        name: "pc-1",
        capacity: 1,
        after: "serve",
        listen: "127.0.0.1",
        inflight: 4,
        verifyMd5: true,
        progress: "quiet",
        log,
        masterTimeout: 10,
      }),
    });
  } finally {
    await chunkServer.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("client: hello, assign, received, verified, end; the disk holds the image", async () => {
  await withLab(async (lab) => {
    const master = fakeMaster(lab.manifestBytes, serveAndEnd(lab));
    try {
      const result = await runClient(lab.options(master.url));
      assert.equal(result.verified, true);
      assert.equal(result.reason, "all 1 expected PCs verified");
      assert.deepEqual(result.servers, ["fake"]);
      assert.equal(result.bytesReceived, lab.image.length - CHUNK, "the zero chunk is not fetched");
      assert.deepEqual(await Deno.readFile(join(lab.dir, "disk.img")), lab.image);
      const hello = master.received[0];
      assert.equal(hello.type, "hello");
      assert.equal(hello.role, "client");
      assert.equal(hello.name, "pc-1");
      assert.equal(hello.imageId, lab.imageId);
      assert.equal(hello.held, 1, "the zero chunk is held before any fetch");
      assert.equal(hello.complete, false);
      assert.equal(hello.disk, join(lab.dir, "disk.img"));
      assert.deepEqual(master.types().slice(0, 3), ["hello", "received", "verified"]);
      const verified = master.received.find((m) => m.type === "verified")!;
      assert.equal(verified.ok, true);
      assert.deepEqual(verified.bad, []);
      const progress = master.received.filter((m) => m.type === "progress").at(-1)!;
      assert.equal(progress.held, 6);
      assert.ok(
        lab.events.includes("welcome") && lab.events.includes("verified"),
        lab.events.join(" "),
      );
    } finally {
      await master.close();
    }
  });
});

Deno.test("client: a server that cannot be reached is reported as failed; the next assign resumes", async () => {
  await withLab(async (lab) => {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const deadUrl = `http://127.0.0.1:${(probe.addr as Deno.NetAddr).port}`;
    probe.close();
    const ticket = issueTicket(KEY, NONCE, "127.0.0.1");
    const master = fakeMaster(lab.manifestBytes, (say, msg) => {
      if (msg.type === "hello") {
        say(welcome(lab.imageId));
        say({ type: "assign", server: { id: "gone", url: deadUrl }, ticket });
      }
      if (msg.type === "failed") {
        say({ type: "assign", server: { id: "fake", url: lab.serverUrl }, ticket });
      }
      if (msg.type === "verified") say({ type: "end", reason: "done" });
    });
    try {
      const result = await runClient(lab.options(master.url));
      assert.equal(result.verified, true);
      assert.deepEqual(result.servers, ["gone", "fake"]);
      const failed = master.received.find((m) => m.type === "failed")!;
      assert.equal(failed.server, "gone");
      assert.equal(typeof failed.reason, "string");
      assert.match(String(failed.detail), /127\.0\.0\.1/);
      assert.deepEqual(master.types().slice(0, 4), ["hello", "failed", "received", "verified"]);
      assert.deepEqual(await Deno.readFile(join(lab.dir, "disk.img")), lab.image);
    } finally {
      await master.close();
    }
  });
});

Deno.test('client: an assign the master sent before it read "received" (a late move) is not acted on', async () => {
  await withLab(async (lab) => {
    const ticket = issueTicket(KEY, NONCE, "127.0.0.1");
    const assign = { type: "assign", server: { id: "fake", url: lab.serverUrl }, ticket };
    const master = fakeMaster(lab.manifestBytes, (say, msg) => {
      if (msg.type === "hello") say(welcome(lab.imageId)), say(assign);
      // The race: the master moved this PC to another server while its "received" was on the
      // wire, so a second assign arrives after the client has sent it.
      if (msg.type === "received") say({ ...assign, server: { id: "other", url: lab.serverUrl } });
      if (msg.type === "verified") setTimeout(() => say({ type: "end", reason: "done" }), 300);
    });
    try {
      const result = await runClient(lab.options(master.url));
      assert.equal(result.verified, true);
      assert.deepEqual(result.servers, ["fake"], "the late assign started no fetch");
      assert.deepEqual(master.types().filter((t) => t !== "finished"), [
        "hello",
        "received",
        "verified",
      ]);
      assert.ok(lab.events.includes("assign-ignored"), lab.events.join(" "));
      assert.deepEqual(await Deno.readFile(join(lab.dir, "disk.img")), lab.image);
    } finally {
      await master.close();
    }
  });
});

Deno.test("client: it reports at the interval the master names, in its welcome and as the room grows", async () => {
  await withLab(async (lab) => {
    const assign = {
      type: "assign",
      server: { id: "fake", url: lab.serverUrl },
      ticket: issueTicket(KEY, NONCE, "127.0.0.1"),
    };
    const master = fakeMaster(lab.manifestBytes, (say, msg) => {
      if (msg.type === "hello") {
        say({ ...welcome(lab.imageId), progressMs: 1500 });
        say({ type: "pace", progressMs: 3000 });
        say({ type: "pace", progressMs: "fast" }); // junk: ignored
        say(assign);
      }
      if (msg.type === "verified") say({ type: "end", reason: "done" });
    });
    // The ticker as the client runs it: each interval started, and whether it was stopped.
    const tickers: { ms: number; stopped: boolean }[] = [];
    const every = (ms: number, fn: () => void) => {
      const t = { ms, stopped: false };
      tickers.push(t);
      const id = setInterval(fn, ms);
      return () => (clearInterval(id), t.stopped = true);
    };
    try {
      const result = await runClient({ ...lab.options(master.url), every });
      assert.equal(result.verified, true);
      assert.deepEqual(tickers, [
        { ms: 500, stopped: true },
        { ms: 1500, stopped: true },
        { ms: 3000, stopped: true },
      ]);
      assert.ok(lab.events.includes("pace"), lab.events.join(" "));
    } finally {
      await master.close();
    }
  });
});

Deno.test("client: a master that refuses the hello ends the client, not verified, with its reason", async () => {
  await withLab(async (lab) => {
    const master = fakeMaster(lab.manifestBytes, (say, msg) => {
      if (msg.type === "hello") {
        say({ type: "error", message: "This run is draining: the master admits no new clients" });
      }
    });
    try {
      const result = await runClient(lab.options(master.url));
      assert.equal(result.verified, false);
      assert.equal(
        result.reason,
        "refused by the master: This run is draining: the master admits no new clients",
      );
      assert.deepEqual(result.servers, []);
      assert.deepEqual(master.types(), ["hello"]);
    } finally {
      await master.close();
    }
  });
});

Deno.test("client: a PC pinned to another image refuses the master's manifest before it writes", async () => {
  await withLab(async (lab) => {
    const master = fakeMaster(lab.manifestBytes, () => assert.fail("no session expected"));
    try {
      const other = "0".repeat(64);
      await assert.rejects(
        () => runClient({ ...lab.options(master.url), imageId: other }),
        new Error(
          `Refusing image "${lab.imageId}" from "${master.url}": this PC accepts only image "${other}"`,
        ),
      );
      await assert.rejects(() => Deno.stat(join(lab.dir, "disk.img")), Deno.errors.NotFound);
      assert.deepEqual(master.received, []);
    } finally {
      await master.close();
    }
  });
});

/** A peer whose manifest was tampered with (one byte changed): it must never be used. */
function lyingPeer(manifestBytes: Uint8Array) {
  const bad = manifestBytes.slice();
  bad[bad.length - 2] ^= 1;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(bad.slice(), { headers: { "content-type": "application/json" } }),
  );
  return {
    url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    close: () => server.shutdown(),
  };
}

for (const good of [true, false]) {
  Deno.test(
    `client: the manifest from ${
      good ? "a peer, after refusing a tampered copy" : "the master when the only peer lies"
    }; the disk holds the image`,
    async () => {
      await withLab(async (lab) => {
        const liar = lyingPeer(lab.manifestBytes);
        const sources = good ? [liar.url, lab.serverUrl] : [liar.url];
        const master = fakeMaster(lab.manifestBytes, serveAndEnd(lab), sources);
        try {
          const result = await runClient(lab.options(master.url));
          assert.equal(result.verified, true);
          assert.deepEqual(await Deno.readFile(join(lab.dir, "disk.img")), lab.image);
          assert.equal(master.asked[0], "/api/v1/manifest/sources");
          // The master's port carried the manifest only when no peer had a good copy.
          assert.equal(master.asked.includes("/api/v1/manifest"), !good);
          const refused = lab.events.indexOf("manifest.refused");
          assert.ok(refused >= 0 && refused < lab.events.indexOf("manifest"), lab.events.join(" "));
          assert.equal(master.received[0].imageId, lab.imageId);
        } finally {
          await master.close();
          await liar.close();
        }
      });
    },
  );
}
