import assert from "node:assert/strict";
import { acceptKey, headEnd, parseHead, upgradeAnswer } from "./ws_handshake.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

const UPGRADE = "GET /api/v1/control HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nUpgrade: websocket\r\n" +
  "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
  "Sec-WebSocket-Version: 13\r\n\r\n";

Deno.test("handshake: RFC 6455's own example key; a head parsed and answered with 101", () => {
  assert.equal(acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  const bytes = enc(UPGRADE + "\x81\x85");
  const end = headEnd(bytes);
  assert.equal(end, UPGRADE.length);
  assert.equal(headEnd(enc(UPGRADE.slice(0, -1))), -1);
  const head = parseHead(bytes.subarray(0, end))!;
  assert.equal(head.method, "GET");
  assert.equal(head.target, "/api/v1/control");
  assert.equal(head.headers.get("host"), "10.0.0.1:8080");
  const a = upgradeAnswer(head);
  assert.ok(a.ok);
  assert.equal(
    dec(a.bytes),
    "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n" +
      "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
  );
});

Deno.test("handshake: refusals name what is wrong and close the connection", () => {
  const answer = (text: string) => {
    const head = parseHead(enc(text));
    assert.ok(head, text);
    const a = upgradeAnswer(head);
    assert.equal(a.ok, false);
    return dec(a.bytes);
  };
  const v12 = answer(UPGRADE.replace("Version: 13", "Version: 12"));
  assert.match(v12, /^HTTP\/1\.1 426 Upgrade Required\r\n/);
  assert.match(v12, /\r\nsec-websocket-version: 13\r\n/);
  assert.match(
    v12,
    /\r\nconnection: close\r\n\r\n\{"error":"WebSocket version \\"12\\" is not 13"\}$/,
  );
  assert.match(
    answer(UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "short")),
    /^HTTP\/1\.1 400 .*not 16 bytes in base64/s,
  );
  assert.match(answer(UPGRADE.replace("keep-alive, Upgrade", "keep-alive")), /Connection: Upgrade/);
  assert.match(answer(UPGRADE.replace("GET", "POST")), /opens with GET, not POST/);
  assert.match(answer(UPGRADE.replace("HTTP/1.1", "HTTP/1.0")), /needs HTTP\/1\.1/);
  const body = /\r\n\r\n(.*)$/s.exec(v12)![1];
  assert.match(v12, new RegExp(`content-length: ${body.length}\\r\\n`));
  assert.equal(parseHead(enc("GARBAGE\r\n\r\n")), null);
  assert.equal(parseHead(enc("GET / HTTP/1.1\r\nbad header\r\n\r\n")), null);
});
