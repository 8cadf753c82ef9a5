import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { digest, hashChunk, InlineImageHasher, isAllZero, SplitImageHasher } from "./chunk_hash.ts";
import { zeroChunkHashes } from "./chunk_hash.ts";
import { seededImage } from "../testkit.ts";

const hex = (algo: string, b: Uint8Array) => createHash(algo).update(b).digest("hex");

Deno.test("isAllZero finds a single non-zero byte anywhere, at any alignment", () => {
  const buf = new Uint8Array(1000);
  for (const start of [0, 1, 3, 7, 8]) {
    for (const len of [0, 1, 7, 8, 9, 100, 991]) {
      const view = buf.subarray(start, start + len);
      assert.equal(isAllZero(view), true);
      for (const at of len ? [0, len - 1, Math.floor(len / 2)] : []) {
        view[at] = 1;
        assert.equal(isAllZero(view), false, `start ${start} len ${len} at ${at}`);
        view[at] = 0;
      }
    }
  }
});

Deno.test("hashChunk gives MD5, SHA-256 and the zero flag", () => {
  const data = seededImage(10_000, 1);
  assert.deepEqual(hashChunk(data), {
    md5: hex("md5", data),
    sha256: hex("sha256", data),
    zero: false,
  });
  assert.deepEqual(hashChunk(new Uint8Array(4096)), { ...zeroChunkHashes(4096), zero: true });
  assert.deepEqual(digest(data, ["sha256"]), { sha256: hex("sha256", data) });
});

Deno.test("image hashers (split and inline) give chunk and whole-image hashes", async () => {
  const image = seededImage(5 * 4096 + 33, 3, [[4096, 8192]]);
  const pieces = [0, 4096, 8192, 12288, 16384, 20480].map((o) => image.subarray(o, o + 4096));
  for (
    const [mode, make] of [["split", SplitImageHasher], ["inline", InlineImageHasher]] as const
  ) {
    const h = new make();
    try {
      for (let round = 0; round < 2; round++) { // finish() starts over
        const got = await Promise.all(pieces.map((p) => h.push(p)));
        assert.deepEqual(got, pieces.map((p) => hashChunk(p)), mode);
        assert.equal(got[1].zero, true);
        assert.deepEqual(await h.finish(), {
          md5: hex("md5", image),
          sha256: hex("sha256", image),
        }, mode);
      }
      assert.deepEqual(await h.finish(), {
        md5: hex("md5", new Uint8Array(0)),
        sha256: hex("sha256", new Uint8Array(0)),
      });
    } finally {
      h.close();
    }
  }
});
