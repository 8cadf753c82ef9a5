import assert from "node:assert/strict";
import { join } from "node:path";
import { assembleImage } from "./assemble.ts";
import { sliceImage } from "./slice.ts";
import { listDir, seededImage, withTempDir } from "./testkit.ts";

const CHUNK = 4096;

async function sliced(dir: string) {
  const data = seededImage(6 * CHUNK + 100, 31, [[CHUNK, 2 * CHUNK]]);
  const image = join(dir, "disk.img");
  await Deno.writeFile(image, data);
  const out = join(dir, "slices");
  const r = await sliceImage({ image, out, chunkSize: CHUNK });
  const chunkFile = (i: number) => join(out, "chunks", `${r.manifest.chunks[i].sha256}.chunk`);
  return { data, out, manifest: r.manifest, chunkFile };
}

Deno.test("assemble names the chunk and file of a missing chunk and leaves no output", () =>
  withTempDir(async (dir) => {
    const { out, chunkFile } = await sliced(dir);
    await Deno.remove(chunkFile(3));
    const target = join(dir, "back.img");
    await assert.rejects(assembleImage({ slices: out, out: target }), {
      message: `Cannot read chunk 3 of "${out}": file "${chunkFile(3)}" is missing`,
    });
    assert.deepEqual(await listDir(dir), ["disk.img", "slices"]);
  }));

Deno.test("assemble refuses a corrupt or truncated chunk file before writing it", () =>
  withTempDir(async (dir) => {
    const { out, chunkFile, manifest } = await sliced(dir);
    const target = join(dir, "back.img");
    const bytes = await Deno.readFile(chunkFile(4));
    const bad = bytes.slice();
    bad[0] ^= 0xff;
    await Deno.writeFile(chunkFile(4), bad);
    await assert.rejects(
      assembleImage({ slices: out, out: target }),
      (err: Error) => {
        assert.match(
          err.message,
          new RegExp(
            `^Cannot assemble "${target}": chunk 4 file "${chunkFile(4)}" is corrupt: ` +
              `expected SHA-256 "${manifest.chunks[4].sha256}", got "[0-9a-f]{64}"$`,
          ),
        );
        return true;
      },
    );
    await Deno.writeFile(chunkFile(4), bytes.subarray(0, 1000));
    await assert.rejects(assembleImage({ slices: out, out: target }), {
      message: `Cannot read chunk 4 of "${out}": file "${
        chunkFile(4)
      }" holds 1000 bytes, expected 4096`,
    });
    assert.deepEqual(await listDir(dir), ["disk.img", "slices"]);
  }));

Deno.test("assemble overwrites an existing file only with force", () =>
  withTempDir(async (dir) => {
    const { data, out } = await sliced(dir);
    const target = join(dir, "back.img");
    await Deno.writeTextFile(target, "old contents, longer than nothing");
    await assert.rejects(assembleImage({ slices: out, out: target }), {
      message: `Cannot assemble to "${target}": it already exists (use --force to overwrite it)`,
    });
    assert.equal(await Deno.readTextFile(target), "old contents, longer than nothing");
    await assembleImage({ slices: out, out: target, force: true });
    assert.deepEqual(await Deno.readFile(target), data);
    await assert.rejects(assembleImage({ slices: out, out: dir, force: true }), {
      message: `Cannot assemble to "${dir}": it is a directory`,
    });
  }));

Deno.test("assemble: sparse data chunks among zeros, more chunks than buffers, short last chunk", () =>
  withTempDir(async (dir) => {
    // Every 7th chunk holds data: batches of the chunk hasher fill slowly, and the writer must
    // not wait for a chunk still held back in a part-filled batch.
    const count = 1000;
    const data = new Uint8Array(count * CHUNK - 300);
    for (let i = 0; i < count; i += 7) {
      data.set(seededImage(CHUNK, i + 1).subarray(0, data.length - i * CHUNK), i * CHUNK);
    }
    const image = join(dir, "sparse.img");
    await Deno.writeFile(image, data);
    const out = join(dir, "slices");
    await sliceImage({ image, out, chunkSize: CHUNK });
    const target = join(dir, "back.img");
    const r = await assembleImage({ slices: out, out: target });
    assert.equal(r.zeroChunks, count - Math.ceil(count / 7));
    assert.deepEqual(await Deno.readFile(target), data);
  }));
