import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { compressChunk } from "../../imagetools/mod.ts";
import { compressibleImage } from "../../imagetools/testkit.ts";
import { frameHead } from "../protocol/mod.ts";
import { decodeZstdFrame, frameFor } from "./chunk_frames.ts";

Deno.test("frameFor: a raw frame holds exactly the chunk, a zstd one 1..its length", () => {
  assert.deepEqual(frameFor(frameHead(false, 4096), 4096), { zstd: false, length: 4096 });
  assert.deepEqual(frameFor(frameHead(true, 100), 4096), { zstd: true, length: 100 });
  assert.equal(
    frameFor(frameHead(false, 4095), 4096),
    "a raw frame of 4095 bytes for a chunk of 4096",
  );
  assert.equal(
    frameFor(frameHead(true, 5000), 4096),
    "a zstd frame of 5000 bytes for a chunk of 4096",
  );
  assert.equal(frameFor(frameHead(true, 0), 4096), "a zstd frame of 0 bytes for a chunk of 4096");
  assert.equal(frameFor(new Uint8Array([9, 0, 0, 0, 1]), 4096), "unknown frame encoding 9");
});

Deno.test("decodeZstdFrame: the chunk in place of its zstd bytes, hashed; bad zstd said, not thrown", () => {
  const plain = compressibleImage(8192, 3);
  const z = compressChunk(plain)!;
  const buffer = new ArrayBuffer(8192);
  new Uint8Array(buffer).set(z);
  const got = decodeZstdFrame(buffer, z.length, 8192);
  assert.deepEqual(new Uint8Array(got.buffer), plain);
  assert.equal(got.sha256, createHash("sha256").update(plain).digest("hex"));
  assert.deepEqual(got.stored, z);
  assert.equal(got.bad, undefined);

  const junk = new ArrayBuffer(8192);
  new Uint8Array(junk).fill(7, 0, 50);
  assert.match(decodeZstdFrame(junk, 50, 8192).bad!, /^its zstd frame: it is not valid zstd \(/);
  // Valid zstd of fewer bytes than the chunk: the wrong length, said so.
  new Uint8Array(junk).set(compressChunk(plain.subarray(0, 4096))!);
  assert.equal(
    decodeZstdFrame(junk, compressChunk(plain.subarray(0, 4096))!.length, 8192).bad,
    "its zstd frame: it decompresses to 4096 bytes, expected 8192",
  );
  // More than the chunk is never made.
  new Uint8Array(junk).set(z);
  assert.equal(
    decodeZstdFrame(junk, z.length, 4096).bad,
    "its zstd frame: it decompresses to more than 4096 bytes",
  );
});
