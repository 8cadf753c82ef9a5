import assert from "node:assert/strict";
import { join } from "node:path";
import { loadManifest, openImage, openSlices, osReason } from "./image_io.ts";
import { imageIdOf } from "./manifest.ts";
import { sliceImage } from "./slice.ts";
import { expectedManifest, seededImage, withTempDir } from "./testkit.ts";

Deno.test("openImage reads ranges into the caller's buffer, short only at the end", () =>
  withTempDir(async (dir) => {
    const data = seededImage(10_000, 41);
    const path = join(dir, "a.img");
    await Deno.writeFile(path, data);
    const img = await openImage(path);
    try {
      assert.equal(img.size, 10_000);
      assert.equal(img.blockDevice, false);
      const buf = new Uint8Array(4096);
      for (const offset of [0, 4096, 100, 9000, 5000]) {
        const n = await img.readAt(offset, buf);
        assert.equal(n, Math.min(4096, 10_000 - offset));
        assert.deepEqual(buf.subarray(0, n), data.subarray(offset, offset + n));
      }
    } finally {
      img.close();
    }
  }));

Deno.test("openImage says why it cannot open a path", () =>
  withTempDir(async (dir) => {
    const file = join(dir, "f");
    await Deno.writeTextFile(file, "x");
    await assert.rejects(openImage(join(dir, "missing.img")), {
      message: `Cannot open image "${join(dir, "missing.img")}": no such file or directory`,
    });
    await assert.rejects(openImage(dir), {
      message: `Cannot read image "${dir}": it is a directory`,
    });
    await assert.rejects(openImage(join(file, "x"), "disk"), {
      message: `Cannot open disk "${join(file, "x")}": not a directory`,
    });
    assert.equal(
      osReason(new Error("Permission denied (os error 13): open '/x'")),
      "permission denied",
    );
  }));

Deno.test("loadManifest and openSlices read a slices folder by index and hash only", () =>
  withTempDir(async (dir) => {
    const data = seededImage(3 * 4096 + 5, 42, [[4096, 8192]]);
    const image = join(dir, "a.img");
    await Deno.writeFile(image, data);
    const out = join(dir, "s");
    await sliceImage({ image, out, chunkSize: 4096, uncompressed: true });
    const want = expectedManifest(data, 4096, "a.img");

    for (const given of [out, join(out, "manifest.json")]) {
      const m = await loadManifest(given);
      assert.deepEqual(m.manifest, want.manifest);
      assert.equal(new TextDecoder().decode(m.bytes), want.text);
      assert.equal(m.imageId, imageIdOf(want.text));
      assert.equal(m.path, join(out, "manifest.json"));
      assert.equal(m.dir, out);
    }

    const s = await openSlices(out);
    assert.equal(s.imageId, imageIdOf(want.text));
    assert.deepEqual(s.manifestBytes, new TextEncoder().encode(want.text));
    for (let i = 0; i < 4; i++) {
      assert.deepEqual(await s.readChunk(i), data.subarray(i * 4096, (i + 1) * 4096));
    }
    assert.equal(s.chunkPath(1), null); // zero chunk: no file
    assert.equal(s.chunkPath(0), join(out, "chunks", `${want.manifest.chunks[0].sha256}.chunk`));
    assert.throws(() => s.chunkPath(4), {
      name: "RangeError",
      message: `Invalid chunk index 4 for "${out}": the image has chunks 0..3`,
    });
    await assert.rejects(s.readChunk(-1), { name: "RangeError" });
    await assert.rejects(s.readChunk(1.5), { name: "RangeError" });
  }));

Deno.test("loadManifest names the file and the fault", () =>
  withTempDir(async (dir) => {
    const path = join(dir, "manifest.json");
    await assert.rejects(loadManifest(dir), {
      message: `Cannot read manifest "${path}": no such file or directory`,
    });
    await Deno.writeTextFile(path, '{"format":4}');
    await assert.rejects(loadManifest(path), {
      message:
        `Cannot load manifest "${path}": Invalid manifest: unsupported format version 4 (this Cascade reads formats 1, 2, 3)`,
    });
    await Deno.writeFile(path, new Uint8Array([0x7b, 0xff, 0x7d]));
    await assert.rejects(loadManifest(dir), {
      message: `Cannot load manifest "${path}": Invalid manifest: not UTF-8 text`,
    });
  }));

Deno.test("openImage serves concurrent reads at different offsets (no shared cursor)", () =>
  withTempDir(async (dir) => {
    const data = seededImage(64 * 1024, 43);
    const path = join(dir, "c.img");
    await Deno.writeFile(path, data);
    const img = await openImage(path);
    try {
      const offsets = [60_000, 0, 33_333, 4096, 50_000, 12_345, 63_000, 20_000];
      const bufs = offsets.map(() => new Uint8Array(4096));
      const got = await Promise.all(offsets.map((o, k) => img.readAt(o, bufs[k])));
      offsets.forEach((o, k) => {
        assert.equal(got[k], Math.min(4096, data.length - o));
        assert.deepEqual(bufs[k].subarray(0, got[k]), data.subarray(o, o + got[k]));
      });
    } finally {
      img.close();
    }
  }));

Deno.test("openSlices.checkFiles names missing and short chunk files, by stat", () =>
  withTempDir(async (dir) => {
    const data = seededImage(3 * 4096, 44);
    const out = join(dir, "s");
    await sliceImage({ image: await writeTo(join(dir, "a.img"), data), out, chunkSize: 4096 });
    const s = await openSlices(out);
    assert.deepEqual(await s.checkFiles(), []);
    const f1 = `chunks/${s.manifest.chunks[1].sha256}.chunk`;
    const f2 = `chunks/${s.manifest.chunks[2].sha256}.chunk`;
    await Deno.remove(join(out, f1));
    await Deno.writeFile(join(out, f2), new Uint8Array(7));
    assert.deepEqual(await s.checkFiles(), [
      `${f1} (chunk 1) is missing`,
      `${f2} (chunk 2) holds 7 bytes, not 4096`,
    ]);
    await assert.rejects(s.readChunk(1), {
      message: `Cannot read chunk 1 of "${out}": file "${join(out, f1)}" is missing`,
    });
  }));

async function writeTo(path: string, bytes: Uint8Array): Promise<string> {
  await Deno.writeFile(path, bytes);
  return path;
}
