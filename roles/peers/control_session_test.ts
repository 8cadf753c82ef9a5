// The control session against a fake master on loopback (Deno.serve and a WebSocket): hello on
// every connect, backoff while the master cannot be reached, a fresh hello after it comes back,
// malformed master messages logged and skipped, a refusal at hello fatal, rest() and close().
import assert from "node:assert/strict";
import type { LogFields } from "../../imagetools/kit/mod.ts";
import type { HelloMessage, MasterMessage } from "../protocol/mod.ts";
import { ControlSession, controlUrl } from "./control_session.ts";

const HELLO = (held: number): HelloMessage => ({
  type: "hello",
  version: 1,
  role: "client",
  name: "pc-1",
  imageId: "a".repeat(64),
  port: 9,
  capacity: 1,
  held,
  complete: false,
});

const WELCOME = {
  type: "welcome",
  id: "pc-1",
  mode: "relay",
  imageId: "a".repeat(64),
  address: "127.0.0.1",
  ticketKey: "k".repeat(64),
};

/** A master that answers each socket through `onHello` (its sends) and records what came in. */
function fakeMaster(onHello: (ws: WebSocket, hello: HelloMessage, n: number) => void, port = 0) {
  const received: unknown[] = [];
  const sockets: WebSocket[] = [];
  let hellos = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (req) => {
    if (new URL(req.url).pathname !== "/api/v1/control") return new Response("no", { status: 404 });
    const { socket, response } = Deno.upgradeWebSocket(req);
    sockets.push(socket);
    socket.onmessage = (ev) => {
      const msg = JSON.parse(String(ev.data));
      received.push(msg);
      if (msg.type === "hello") onHello(socket, msg, ++hellos);
    };
    return response;
  });
  const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  return {
    url,
    received,
    sockets,
    async close() {
      for (const s of sockets) if (s.readyState <= WebSocket.OPEN) s.close();
      await server.shutdown();
    },
  };
}

/** Resolves once `test()` holds (polled); fails with `what` after 10 s. */
async function until(what: string, test: () => boolean) {
  const start = Date.now();
  while (!test()) {
    if (Date.now() - start > 10_000) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function recorder() {
  const lines: { event: string; fields: LogFields }[] = [];
  const log = (event: string, fields: LogFields = {}) => void lines.push({ event, fields });
  return { lines, log, events: () => lines.map((l) => l.event) };
}

Deno.test("controlUrl: ws:// or wss:// on the master's own host and port", () => {
  assert.equal(controlUrl("http://10.0.0.1:8080"), "ws://10.0.0.1:8080/api/v1/control");
  assert.equal(controlUrl("https://m.lab/"), "wss://m.lab/api/v1/control");
});

Deno.test("control session: hello on connect, welcome, messages in both directions", async () => {
  const master = fakeMaster((ws) => {
    ws.send(JSON.stringify(WELCOME));
    ws.send(JSON.stringify({ type: "serve", clients: ["pc-2"] }));
  });
  const rec = recorder();
  const got: MasterMessage[] = [];
  const welcomes: unknown[] = [];
  const session = new ControlSession({
    masterUrl: master.url,
    hello: () => HELLO(3),
    onWelcome: (w) => welcomes.push(w),
    onMessage: (m) => got.push(m),
    onFatal: (m) => assert.fail(`fatal: ${m}`),
    log: rec.log,
  });
  try {
    assert.equal(session.send({ type: "received" }), false, "nothing is sent before a socket");
    session.start();
    await until("the serve message", () => got.length === 1);
    assert.deepEqual(welcomes, [WELCOME]);
    assert.deepEqual(got, [{ type: "serve", clients: ["pc-2"] }]);
    assert.equal(session.connected, true);
    assert.equal(session.send({ type: "received" }), true);
    await until("the received message", () => master.received.length === 2);
    assert.deepEqual(master.received, [HELLO(3), { type: "received" }]);
  } finally {
    session.close();
    await master.close();
  }
  assert.equal(session.connected, false);
});

Deno.test("control session: backoff doubles up to the cap while the master is away, then a fresh hello", async () => {
  // A port nobody listens on yet: take one, then free it.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const rec = recorder();
  let held = 0;
  const session = new ControlSession({
    masterUrl: `http://127.0.0.1:${port}`,
    hello: () => HELLO(held),
    onMessage: () => {},
    onFatal: (m) => assert.fail(`fatal: ${m}`),
    log: rec.log,
    minDelay: 10,
    maxDelay: 40,
  });
  session.start();
  let master: ReturnType<typeof fakeMaster> | undefined;
  try {
    await until("four failed tries", () => rec.lines.length >= 4);
    assert.deepEqual(
      rec.lines.slice(0, 4).map((l) => [l.event, l.fields.retry]),
      [
        ["master-unreachable", "10ms"],
        ["master-unreachable", "20ms"],
        ["master-unreachable", "40ms"],
        ["master-unreachable", "40ms"],
      ],
    );
    held = 5; // the hello is built at each connect: it carries what the peer holds now
    master = fakeMaster((ws) => ws.send(JSON.stringify(WELCOME)), port);
    await until("the welcome", () => session.connected);
    assert.deepEqual(master.received, [HELLO(5)]);

    // The master restarts: the session says it lost it and says hello again at once (the
    // backoff starts over after a good connect).
    rec.lines.length = 0;
    held = 7;
    for (const s of master.sockets) s.close();
    await until("the second hello", () => master!.received.length === 2);
    assert.deepEqual(master.received[1], HELLO(7));
    assert.deepEqual(rec.lines[0], {
      event: "master-lost",
      fields: { master: `http://127.0.0.1:${port}`, retry: "10ms" },
    });
  } finally {
    session.close();
    await master?.close();
  }
});

Deno.test("control session: malformed master messages are logged and skipped, the session lives on", async () => {
  const master = fakeMaster((ws) => {
    ws.send(JSON.stringify(WELCOME));
    ws.send("not json at all");
    ws.send(JSON.stringify({ type: "explode" }));
    ws.send(JSON.stringify({ type: "error", message: 'Invalid "progress": held 9 > 4 chunks' }));
    ws.send(JSON.stringify({ type: "end", reason: "done" }));
  });
  const rec = recorder();
  const got: MasterMessage[] = [];
  const session = new ControlSession({
    masterUrl: master.url,
    hello: () => HELLO(0),
    onMessage: (m) => got.push(m),
    onFatal: (m) => assert.fail(`an error after the welcome is not fatal: ${m}`),
    log: rec.log,
  });
  try {
    session.start();
    await until("the end message", () => got.length === 1);
    assert.deepEqual(got, [{ type: "end", reason: "done" }]);
    assert.deepEqual(rec.lines, [
      {
        event: "bad-master-message",
        fields: { error: "Master sent a message that is not JSON: not json at all" },
      },
      {
        event: "bad-master-message",
        fields: { error: 'Master sent an unknown message type "explode"' },
      },
      { event: "master-error", fields: { error: 'Invalid "progress": held 9 > 4 chunks' } },
    ]);
    assert.equal(session.connected, true);
  } finally {
    session.close();
    await master.close();
  }
});

Deno.test("control session: an error before the welcome is fatal and never retried", async () => {
  const master = fakeMaster((ws) => {
    ws.send(JSON.stringify({ type: "error", message: "Wrong server token" }));
    ws.close(1008, "Wrong server token");
  });
  const rec = recorder();
  const fatal: string[] = [];
  const session = new ControlSession({
    masterUrl: master.url,
    hello: () => HELLO(0),
    onMessage: (m) => assert.fail(`no message expected: ${JSON.stringify(m)}`),
    onFatal: (m) => fatal.push(m),
    log: rec.log,
    minDelay: 10,
  });
  try {
    session.start();
    await until("the refusal", () => fatal.length === 1);
    assert.deepEqual(fatal, ["Wrong server token"]);
    // Room for several retries at 10 ms: none comes.
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(master.received.length, 1);
    assert.deepEqual(rec.events(), ["master-error"]);
  } finally {
    session.close();
    await master.close();
  }
});

Deno.test("control session: rest() hangs up and says hello again after the pause", async () => {
  const master = fakeMaster((ws) => ws.send(JSON.stringify(WELCOME)));
  const rec = recorder();
  const session = new ControlSession({
    masterUrl: master.url,
    hello: () => HELLO(0),
    onMessage: () => {},
    onFatal: (m) => assert.fail(`fatal: ${m}`),
    log: rec.log,
  });
  try {
    session.start();
    await until("the welcome", () => session.connected);
    session.rest(30);
    assert.equal(session.connected, false);
    await until("the second hello", () => master.received.length === 2);
    await until("the second welcome", () => session.connected);
    assert.deepEqual(rec.events(), [], "a rest is no lost master");
  } finally {
    session.close();
    await master.close();
  }
});
