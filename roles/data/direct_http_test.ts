import assert from "node:assert/strict";
import { headEnd, issueTicket, ticketValid } from "../protocol/mod.ts";
import { startChunkServer } from "./chunk_server.ts";
import { writeAll } from "./conn_gate.ts";
import { memorySource, randomImage } from "./testkit.ts";

const CHUNK = 64 * 1024;

/** Send `requests` on one connection at once (pipelined) and read until the server closes. */
async function exchange(port: number, requests: string[]): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, new TextEncoder().encode(requests.join("")));
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    parts.push(buf.slice(0, n));
  }
  conn.close();
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

interface Answer {
  status: number;
  headers: Map<string, string>;
  body: Uint8Array;
}

/** The HTTP/1.1 responses in `bytes`, in order (bodies by content-length or chunked). */
function answers(bytes: Uint8Array): Answer[] {
  const out: Answer[] = [];
  const text = (b: Uint8Array) => new TextDecoder("latin1").decode(b);
  while (bytes.length > 0) {
    const end = headEnd(bytes);
    assert.ok(end > 0, `a response head in ${JSON.stringify(text(bytes.subarray(0, 200)))}`);
    const [line, ...rest] = text(bytes.subarray(0, end - 4)).split("\r\n");
    const headers = new Map(rest.map((h) => {
      const at = h.indexOf(":");
      return [h.slice(0, at).toLowerCase(), h.slice(at + 1).trim()] as [string, string];
    }));
    bytes = bytes.subarray(end);
    let body: Uint8Array;
    if (headers.get("transfer-encoding") === "chunked") {
      const pieces: number[] = [];
      for (;;) {
        const lineEnd = text(bytes).indexOf("\r\n");
        const size = parseInt(text(bytes.subarray(0, lineEnd)), 16);
        bytes = bytes.subarray(lineEnd + 2);
        if (size === 0) break;
        pieces.push(...bytes.subarray(0, size));
        bytes = bytes.subarray(size + 2);
      }
      bytes = bytes.subarray(2);
      body = new Uint8Array(pieces);
    } else {
      const n = Number(headers.get("content-length") ?? 0);
      body = bytes.slice(0, n);
      bytes = bytes.subarray(n);
    }
    out.push({ status: Number(line.split(" ")[1]), headers, body });
  }
  return out;
}

Deno.test("data path: chunk and stream GETs kept alive on the gate's connection, then a request it does not serve relayed to the HTTP server", async () => {
  const image = randomImage(4 * CHUNK, [[CHUNK, 2 * CHUNK]]);
  const source = memorySource(image, CHUNK, "games.img");
  const server = await startChunkServer({ source, hostname: "127.0.0.1" });
  try {
    const got = answers(
      await exchange(server.port, [
        "GET /v1/chunks/2 HTTP/1.1\r\nhost: x\r\n\r\n",
        "GET /v1/stream?from=0&to=4 HTTP/1.1\r\nhost: x\r\n\r\n",
        "GET /v1/stream?from=2&to=4 HTTP/1.1\r\nhost: x\r\nx-cascade-framed: 1\r\n\r\n",
        "GET /v1/chunks/9 HTTP/1.1\r\nhost: x\r\n\r\n",
        "GET /v1/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
      ]),
    );
    assert.deepEqual(got.map((a) => a.status), [200, 200, 200, 400, 200]);
    assert.deepEqual(got[0].body, image.slice(2 * CHUNK, 3 * CHUNK));
    assert.equal(got[0].headers.get("x-cascade-image"), source.imageId);
    // The stream: the non-zero chunks 0, 2, 3 back to back.
    assert.deepEqual(
      got[1].body,
      new Uint8Array([...image.subarray(0, CHUNK), ...image.subarray(2 * CHUNK)]),
    );
    // Framed (no length known ahead): chunked, each chunk as a raw frame (5-byte head).
    assert.equal(got[2].headers.get("transfer-encoding"), "chunked");
    assert.equal(got[2].body.length, 2 * (5 + CHUNK));
    assert.deepEqual(got[2].body.subarray(5, 5 + CHUNK), image.subarray(2 * CHUNK, 3 * CHUNK));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(got[3].body)), {
      error: 'Invalid chunk index "9": image "games.img" has chunks 0..3',
    });
    assert.deepEqual(JSON.parse(new TextDecoder().decode(got[4].body)), {
      imageId: source.imageId,
      held: 4,
      total: 4,
    });
  } finally {
    await server.close();
  }
});

Deno.test("data path: the ticket is checked on the gate's connection as behind it", async () => {
  const image = randomImage(2 * CHUNK);
  const key = "ab".repeat(32);
  const server = await startChunkServer({
    source: memorySource(image, CHUNK, "games.img"),
    hostname: "127.0.0.1",
    tickets: (ticket, address) => ticketValid(key, ticket, address),
  });
  try {
    const good = issueTicket(key, "0011223344556677", "127.0.0.1");
    const other = issueTicket(key, "0011223344556677", "10.0.0.9");
    const got = answers(
      await exchange(server.port, [
        "GET /v1/chunks/1 HTTP/1.1\r\nhost: x\r\n\r\n",
        `GET /v1/chunks/1 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${other}\r\n\r\n`,
        `GET /v1/chunks/1 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${good}\r\n` +
        "connection: close\r\n\r\n",
      ]),
    );
    assert.deepEqual(got.map((a) => a.status), [401, 401, 200]);
    assert.deepEqual(got[2].body, image.slice(CHUNK));
    assert.equal(got[2].headers.get("connection"), "close");
  } finally {
    await server.close();
  }
});
