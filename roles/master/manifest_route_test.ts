// The manifest served compressed and cached, through app.request.
import assert from "node:assert/strict";
import { gunzipSync, zstdDecompressSync } from "node:zlib";
import { createMasterApp } from "./app.ts";
import { etagMatches, pickEncoding } from "../data/mod.ts";
import { coreHarness, IMAGE_ID, SAMPLE_MANIFEST } from "./testkit.ts";

const MANIFEST = new TextEncoder().encode(JSON.stringify(SAMPLE_MANIFEST));

function app() {
  const h = coreHarness();
  return createMasterApp({
    core: h.core,
    manifest: SAMPLE_MANIFEST,
    manifestBytes: MANIFEST,
    log: () => {},
    now: () => h.time.now,
  });
}

Deno.test("manifest: zstd or gzip as the PC accepts, identical bytes once decoded", async () => {
  const a = app();
  const get = (accept?: string) =>
    a.request("/api/v1/manifest", { headers: accept ? { "accept-encoding": accept } : {} });
  const z = await get("gzip, deflate, br, zstd");
  assert.equal(z.status, 200);
  assert.equal(z.headers.get("content-encoding"), "zstd");
  assert.equal(z.headers.get("etag"), `"${IMAGE_ID}-zstd"`);
  assert.equal(z.headers.get("vary"), "accept-encoding");
  assert.equal(z.headers.get("x-cascade-image"), IMAGE_ID);
  const zBody = new Uint8Array(await z.arrayBuffer());
  assert.deepEqual(new Uint8Array(zstdDecompressSync(zBody)), MANIFEST);
  assert.ok(
    zBody.byteLength * 5 < MANIFEST.byteLength,
    `${zBody.byteLength} of ${MANIFEST.byteLength}`,
  );
  const g = await get("gzip, br");
  assert.equal(g.headers.get("content-encoding"), "gzip");
  assert.deepEqual(new Uint8Array(gunzipSync(new Uint8Array(await g.arrayBuffer()))), MANIFEST);
  const plain = await get();
  assert.equal(plain.headers.get("content-encoding"), null);
  assert.equal(plain.headers.get("etag"), `"${IMAGE_ID}"`);
  assert.deepEqual(new Uint8Array(await plain.arrayBuffer()), MANIFEST);
});

Deno.test("manifest: If-None-Match with its ETag is a 304 without a body", async () => {
  const a = app();
  const res = await a.request("/api/v1/manifest", {
    headers: { "accept-encoding": "gzip", "if-none-match": `"${IMAGE_ID}-gzip"` },
  });
  assert.equal(res.status, 304);
  assert.equal(await res.text(), "");
  // Another encoding's ETag is another representation: the body comes.
  const other = await a.request("/api/v1/manifest", {
    headers: { "accept-encoding": "zstd", "if-none-match": `"${IMAGE_ID}-gzip"` },
  });
  assert.equal(other.status, 200);
  const image = await a.request("/api/v1/image");
  assert.equal(image.headers.get("etag"), `"${IMAGE_ID}-summary"`);
  const again = await a.request("/api/v1/image", {
    headers: { "if-none-match": image.headers.get("etag")! },
  });
  assert.equal(again.status, 304);
});

Deno.test("manifest: Accept-Encoding and If-None-Match parsing", () => {
  assert.equal(pickEncoding(undefined), "identity");
  assert.equal(pickEncoding("gzip, br"), "gzip");
  assert.equal(pickEncoding("zstd;q=0, gzip;q=0.5"), "gzip");
  assert.equal(pickEncoding("*"), "zstd");
  assert.equal(pickEncoding("*;q=0, identity"), "identity");
  assert.equal(pickEncoding("ZSTD"), "zstd");
  assert.ok(etagMatches('"a", W/"b"', '"b"'));
  assert.ok(etagMatches("*", '"x"'));
  assert.ok(!etagMatches('"a"', '"b"'));
  assert.ok(!etagMatches(undefined, '"b"'));
});
