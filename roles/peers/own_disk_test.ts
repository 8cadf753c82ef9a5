import assert from "node:assert/strict";
import { join } from "node:path";
import { expectedManifest, seededImage, withTempDir } from "../../imagetools/testkit.ts";
import { checkOwnDisk } from "./own_disk.ts";

const CHUNK = 4096;

Deno.test("checkOwnDisk passes a disk holding the image (and more), refuses one that differs", () =>
  withTempDir(async (dir) => {
    const image = seededImage(5 * CHUNK + 10, 31, [[CHUNK, 2 * CHUNK]]);
    const manifestBytes = new TextEncoder().encode(expectedManifest(image, CHUNK, "own.img").text);
    const disk = join(dir, "disk");
    await Deno.writeFile(disk, new Uint8Array([...image, 7, 7, 7]));
    await checkOwnDisk(disk, manifestBytes, "quiet");

    const changed = image.slice();
    changed[3 * CHUNK] ^= 1;
    changed[CHUNK + 5] = 9; // the zero chunk holds something
    await Deno.writeFile(disk, changed);
    await assert.rejects(checkOwnDisk(disk, manifestBytes, "quiet"), {
      message: `Cannot serve "${disk}": 2 chunk(s) do not match the image (first: chunk 1)`,
    });
    await assert.rejects(checkOwnDisk(join(dir, "none"), manifestBytes, "quiet"), {
      message: `Cannot open disk "${join(dir, "none")}": no such file or directory`,
    });
  }));
