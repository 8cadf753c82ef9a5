// The gate on loopback with short deadlines: a connection that sends nothing or half a head is
// closed at the head deadline, a kept-alive one once idle, one past its address's cap at once;
// a whole request is answered with the client's own address.
import assert from "node:assert/strict";
import net from "node:net";
import { gatedServe, RELAY_SLOTS } from "./conn_gate.ts";
import { SlotCounter } from "./slots.ts";

/** Connect from `localAddress`, send `text`; what came back and when it closed (ms). */
function conn(port: number, localAddress: string, text: string) {
  const t0 = performance.now();
  let got = "";
  const closed = new Promise<number>((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress });
    s.on("connect", () => text && s.write(text));
    s.on("data", (d: Uint8Array) => (got += new TextDecoder().decode(d)));
    s.on("error", () => {});
    s.on("close", () => resolve(performance.now() - t0));
  });
  return { closed, got: () => got };
}

Deno.test("gate: idle and half-sent connections are closed at the head deadline, kept-alive ones once idle, past the cap at once", async () => {
  const counter = new SlotCounter({ perAddress: 3 * RELAY_SLOTS, total: 100 });
  const gate = gatedServe({
    hostname: "127.0.0.1",
    port: 0,
    handler: (_req, info) => new Response(`from ${info.remoteAddr.hostname}`),
    counter,
    requests: null,
    headMs: 300,
    idleMs: 600,
    log: () => {},
    name: "test",
  });
  const port = gate.addr.port;
  try {
    const nothing = conn(port, "127.0.0.21", "");
    const half = conn(port, "127.0.0.21", "GET / HTTP/1.1\r\nhost: x\r\n");
    const kept = conn(port, "127.0.0.21", "GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    // The address holds 3 connections: a 4th is closed at once, unanswered and unread.
    await new Promise((r) => setTimeout(r, 100));
    const over = conn(port, "127.0.0.21", "GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    assert.equal(counter.held("127.0.0.21"), 3 * RELAY_SLOTS);
    const [tNothing, tHalf, tKept, tOver] = await Promise.all(
      [nothing, half, kept, over].map((c) => c.closed),
    );
    assert.equal(over.got(), "");
    assert.ok(tOver < tNothing, "past the cap: closed before the deadline");
    assert.equal(counter.refused.address, 1);
    assert.equal(nothing.got() + half.got(), "");
    for (const t of [tNothing, tHalf]) assert.ok(t >= 280, `closed after ${t} ms`);
    // Answered with the client's own address, then closed only once idle (600 ms).
    assert.match(kept.got(), /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nfrom 127\.0\.0\.21$/);
    assert.ok(tKept >= 580, `kept-alive closed after ${tKept} ms`);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(counter.held("127.0.0.21"), 0, "every slot released");
  } finally {
    await gate.shutdown();
  }
});
