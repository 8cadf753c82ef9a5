// The front door on loopback: HTTP relayed with the client's own address (keep-alive, a POST
// body, a second upgrade on a used connection goes to the app), and control sessions served on
// the connection itself: messages both ways, ping answered, the close echoed, caps kept.
import assert from "node:assert/strict";
import net from "node:net";
import { SlotCounter } from "../data/mod.ts";
import { frontDoor } from "./front_door.ts";
import type { ControlSocket } from "./control_ws.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function door(perAddress = 8) {
  const sessions: { socket: ControlSocket; address: string; got: string[] }[] = [];
  const counter = new SlotCounter({ perAddress, total: 100 });
  const server = frontDoor({
    hostname: "127.0.0.1",
    port: 0,
    handler: async (req, info) =>
      Response.json({
        from: info.remoteAddr.hostname,
        path: new URL(req.url).pathname,
        body: req.body ? await req.text() : null,
        upgrade: req.headers.get("upgrade"),
      }),
    counter,
    control: {
      path: "/api/v1/control",
      open(socket, address) {
        const s = { socket, address, got: [] as string[] };
        sessions.push(s);
        socket.onmessage = (ev) => {
          s.got.push(String(ev.data));
          socket.send(`echo ${ev.data}`);
        };
      },
    },
    log: () => {},
    name: "test",
  });
  return { server, sessions, counter, url: `http://127.0.0.1:${server.addr.port}` };
}

/** Send `text` from `localAddress` and read until the server closes (or `until` matches). */
function raw(
  port: number,
  localAddress: string,
  text: string | Uint8Array,
  until?: (got: string) => boolean,
) {
  return new Promise<string>((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port, localAddress });
    let got = "";
    sock.on("connect", () => sock.write(text));
    sock.on("data", (d: Uint8Array) => {
      got += String.fromCharCode(...d); // one character a byte
      if (until?.(got)) {
        sock.destroy();
        resolve(got);
      }
    });
    sock.on("error", reject);
    sock.on("close", () => resolve(got));
  });
}

const UPGRADE = "GET /api/v1/control HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n" +
  "connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
  "sec-websocket-version: 13\r\n\r\n";

Deno.test("front door: HTTP relayed with the client's address, keep-alive and bodies intact", async () => {
  const d = door();
  try {
    // Two requests on one connection, the second a POST with a body.
    const both = await raw(
      d.server.addr.port,
      "127.0.0.7",
      "GET /api/v1/status HTTP/1.1\r\nhost: x\r\n\r\n" +
        "POST /api/v1/admin/x HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
    );
    const bodies = [...both.matchAll(/\r\n\r\n(\{[^}]*\})/g)].map((m) => JSON.parse(m[1]));
    assert.deepEqual(bodies, [
      { from: "127.0.0.7", path: "/api/v1/status", body: null, upgrade: null },
      { from: "127.0.0.7", path: "/api/v1/admin/x", body: "hello", upgrade: null },
    ]);
    // The control path without an upgrade, and an upgrade that is not first: the app's.
    const plain = await raw(
      d.server.addr.port,
      "127.0.0.8",
      "GET /api/v1/control HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert.match(plain, /"path":"\/api\/v1\/control","body":null,"upgrade":null/);
    const second = await raw(
      d.server.addr.port,
      "127.0.0.8",
      "GET /x HTTP/1.1\r\nhost: x\r\n\r\n" + UPGRADE,
      (got) => got.includes('"upgrade":"websocket"'),
    );
    assert.match(second, /"from":"127\.0\.0\.8","path":"\/api\/v1\/control"/);
    assert.equal(d.sessions.length, 0);
    // fetch, as any client.
    const res = await fetch(`${d.url}/api/v1/image?x=1`);
    assert.deepEqual(await res.json(), {
      from: "127.0.0.1",
      path: "/api/v1/image",
      body: null,
      upgrade: null,
    });
  } finally {
    await d.server.shutdown();
  }
});

Deno.test("front door: a control session with Deno's WebSocket: both ways, then the client's close", async () => {
  const d = door();
  try {
    const ws = new WebSocket(`${d.url.replace("http", "ws")}/api/v1/control`);
    const replies: string[] = [];
    const closed = new Promise<CloseEvent>((r) => (ws.onclose = r));
    await new Promise((r) => (ws.onopen = r));
    const two = new Promise<void>((r) =>
      ws.onmessage = (e) => {
        replies.push(String(e.data));
        if (replies.length === 2) r();
      }
    );
    ws.send('{"type":"hello"}');
    ws.send("é".repeat(5000)); // 10 000 bytes: the 2-byte length form
    await two;
    assert.deepEqual(replies, ['echo {"type":"hello"}', `echo ${"é".repeat(5000)}`]);
    assert.equal(d.sessions[0].address, "127.0.0.1");
    ws.close(4000, "done");
    const e = await closed;
    assert.equal(e.code, 4000);
    assert.deepEqual(await d.sessions[0].socket.closed, { code: 4000, reason: "done" });
  } finally {
    await d.server.shutdown();
  }
});

Deno.test("front door: a ping is answered, the master's close is a close frame, past the cap a connection is closed at once", async () => {
  const d = door(4); // one session (1) and a connection's worst case (4) do not fit
  try {
    // A masked ping "hi" (mask 0): the answer is the 101 then a pong "hi".
    const ping = new Uint8Array([0x89, 0x82, 0, 0, 0, 0, 0x68, 0x69]);
    const bytes = new Uint8Array([...enc(UPGRADE), ...ping]);
    const pong = raw(d.server.addr.port, "127.0.0.9", bytes, (got) => got.endsWith("\x8a\x02hi"));
    assert.match(await pong, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    // A second connection from an address is refused while its session is open.
    const first = raw(d.server.addr.port, "127.0.0.10", UPGRADE);
    while (d.sessions.length < 2) await new Promise((r) => setTimeout(r, 10));
    // Closed unanswered (a reset, when the request was not read yet).
    const refused = await raw(d.server.addr.port, "127.0.0.10", UPGRADE).catch((e) => e.code);
    assert.ok(refused === "" || refused === "ECONNRESET", refused);
    assert.deepEqual(d.counter.refused, { address: 1, total: 0 });
    d.sessions[1].socket.close(1008, "No hello");
    // The close frame (code 1008), then the connection ends (2 s without the client's answer).
    const rest = (await first).split("\r\n\r\n")[1];
    assert.equal(rest, "\x88\x0a\x03\xf0No hello");
  } finally {
    await d.server.shutdown();
  }
});
