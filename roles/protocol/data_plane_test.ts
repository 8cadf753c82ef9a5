import assert from "node:assert/strict";
import {
  chunkUrl,
  DATA_PATHS,
  dataBase,
  dataManifestUrl,
  FRAME_ZSTD,
  frameHead,
  healthUrl,
  imageUrl,
  parseFrameHead,
  streamUrl,
} from "./data_plane.ts";

Deno.test("a frame head says zstd or raw and the length, and nothing else reads as one", () => {
  assert.deepEqual([...frameHead(true, 0x01020304)], [FRAME_ZSTD, 1, 2, 3, 4]);
  assert.deepEqual(parseFrameHead(frameHead(true, 70_000)), { zstd: true, length: 70_000 });
  assert.deepEqual(parseFrameHead(frameHead(false, 1 << 20)), { zstd: false, length: 1 << 20 });
  assert.equal(parseFrameHead(new Uint8Array([7, 0, 0, 0, 1])), "unknown frame encoding 7");
  assert.equal(parseFrameHead(new Uint8Array(3)), "a frame head of 3 bytes");
  assert.throws(() => frameHead(false, 2 ** 32), { message: /must fit 32 bits/ });
});

Deno.test("data plane URLs join a server's base with exactly one slash", () => {
  for (const base of ["http://10.0.0.5:8081", "http://10.0.0.5:8081/", "http://10.0.0.5:8081//"]) {
    assert.equal(dataBase(base), "http://10.0.0.5:8081");
    assert.equal(chunkUrl(base, 12), "http://10.0.0.5:8081/v1/chunks/12");
    assert.equal(streamUrl(base, 3, 9), "http://10.0.0.5:8081/v1/stream?from=3&to=9");
    assert.equal(dataManifestUrl(base), "http://10.0.0.5:8081/v1/manifest");
    assert.equal(imageUrl(base), "http://10.0.0.5:8081/v1/image");
    assert.equal(healthUrl(base), "http://10.0.0.5:8081/v1/health");
  }
  assert.equal(chunkUrl("http://[fd00::5]:8081", 0), "http://[fd00::5]:8081/v1/chunks/0");
});

Deno.test("the chunk route pattern and chunkUrl name the same path", () => {
  assert.equal(DATA_PATHS.chunk.replace(":index", "7"), new URL(chunkUrl("http://a", 7)).pathname);
});
