import assert from "node:assert/strict";
import {
  chunkUrl,
  DATA_PATHS,
  dataBase,
  dataManifestUrl,
  healthUrl,
  imageUrl,
  streamUrl,
} from "./data_plane.ts";

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
