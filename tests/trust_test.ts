// Trust: a client takes only the image it was pinned to, and only chunks of that image; a
// server offering another image is refused, by the client and by the master.
import assert from "node:assert/strict";
import { join } from "node:path";
import { sliceImage } from "../imagetools/mod.ts";
import { openSlicesSource } from "../roles/data/mod.ts";
import { startChunkServer } from "../roles/data/mod.ts";
import { makeSampleImage } from "../roles/demo/mod.ts";
import { ReceiveError, Receiver } from "../roles/data/mod.ts";
import { openTarget } from "../roles/data/mod.ts";
import { makeLab, waitExit } from "./lab_kit.ts";

Deno.test("a client refuses a server that offers another image, and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cascade-trust-" });
  try {
    const a = await sliceImage({
      image: await sample(join(dir, "a.img")),
      out: join(dir, "a"),
      chunkSize: 65536,
    });
    const b = await sliceImage({
      image: await sample(join(dir, "b.img")),
      out: join(dir, "b"),
      chunkSize: 65536,
    });
    assert.notEqual(a.imageId, b.imageId);
    const server = await startChunkServer({
      source: await openSlicesSource(join(dir, "b")),
      hostname: "127.0.0.1",
      port: 0,
    });
    const targetPath = join(dir, "disk.img");
    const target = await openTarget(targetPath, a.manifest.size, a.manifest.name);
    const receiver = new Receiver({ manifestBytes: a.manifestBytes, target });
    try {
      await assert.rejects(receiver.fetchFrom(server.url), (e: unknown) => {
        assert.ok(e instanceof ReceiveError);
        assert.equal(e.reason, "wrong-image");
        assert.match(e.message, new RegExp(`serves image "${b.imageId}", not "${a.imageId}"`));
        return true;
      });
    } finally {
      await server.close();
      target.close();
    }
    assert.equal(receiver.stats().heldChunks, a.manifest.chunks.filter((c) => c.zero).length);
    const bytes = await Deno.readFile(targetPath);
    assert.ok(bytes.every((x) => x === 0), "not one byte of the other image was written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the master refuses a server registering with another image", async () => {
  const lab = await makeLab(1024 * 1024);
  try {
    const other = join(lab.dir, "other");
    await sliceImage({ image: await sample(join(lab.dir, "other.img")), out: other });
    const url = await lab.master(["--mode", "classic"]);
    lab.procs.start("rogue", [
      "fake-server",
      "--master",
      url,
      "--slices",
      other,
      "--name",
      "rogue",
      "--listen",
      "127.0.0.1",
    ]);
    assert.equal(await waitExit(lab, "rogue", 30_000), 1);
    assert.match(
      await lab.procs.logText("rogue"),
      /cascade fake-server: refused by the master: Peer holds image "[0-9a-f]{12}" but this master serves "[0-9a-f]{12}"/,
    );
    const status = await lab.status(url);
    assert.deepEqual(status.queues.servers, [], "the rogue never joined the server queue");
  } finally {
    await lab.close();
  }
});

async function sample(path: string): Promise<string> {
  await makeSampleImage(path, 1024 * 1024);
  return path;
}
