// Re-imaging a real block device (a loop device over a temporary file) that already holds the
// image, then one where 4 KiB pages were changed here and there: the client scans the device
// (its stat size is 0), fetches nothing the first time and only the changed blocks the second.
// Needs root and losetup; where those are missing the test is ignored and says why.
import assert from "node:assert/strict";
import { logEvents, makeLab, waitExit } from "./lab_kit.ts";
import { attachLoop, detachLoop, whyNoLoopDevices } from "../imagetools/testkit.ts";
import { sha256File } from "../roles/demo/mod.ts";

const MiB = 1024 * 1024;
const why = await whyNoLoopDevices();
if (why) console.log(`Ignoring the re-image test: ${why}`);

Deno.test({
  name: "a loop device imaged twice fetches nothing the second time; changed pages cost blocks",
  ignore: why !== null,
  fn: async () => {
    const lab = await makeLab(8 * MiB);
    const file = `${lab.dir}/disk.img`;
    let device: string | undefined;
    try {
      await Deno.writeFile(file, new Uint8Array(lab.manifest.size));
      device = await attachLoop(file);
      assert.equal((await Deno.stat(device)).size, 0);
      /** One run: a master expecting one PC, the fake server, the client on the device. */
      const image = async (run: string) => {
        const url = await lab.master(["--mode", "relay", "--expect", "1", "--linger", "0"], run);
        lab.fake(`fake-${run}`, url);
        const pc = `pc-${run}`;
        lab.procs.start(pc, [
          "client",
          ...["--master", url, "--target", device!, "--name", pc, "--listen", "127.0.0.1"],
          "--quiet",
        ]);
        assert.equal(await waitExit(lab, run), 0);
        assert.equal(await waitExit(lab, pc, 30_000), 0);
        lab.procs.kill(`fake-${run}`);
        assert.equal(await sha256File(device!, lab.manifest.size), lab.manifest.sha256);
        const [fin] = logEvents(await lab.procs.logText(pc), `client[${pc}].finished`);
        assert.equal(fin.verified, "true");
        return Number(fin.received);
      };
      const chunk = lab.manifest.chunkSize;
      const nonZero = lab.manifest.chunks.filter((c) => !c.zero).length;
      assert.equal(await image("first"), nonZero * chunk);
      assert.equal(await image("second"), 0, "the device already held the image");

      // Change one 4 KiB page in each of 6 non-zero chunks (as a month of updates would).
      const changed = lab.manifest.chunks.flatMap((c, i) => c.zero ? [] : [i]).slice(1, 7);
      {
        using f = await Deno.open(device, { read: true, write: true });
        for (const [k, i] of changed.entries()) {
          await f.seek(i * chunk + k * 8192, Deno.SeekMode.Start);
          await f.write(new Uint8Array(4096).fill(0x5a + k));
        }
        await f.sync();
      }
      const received = await image("third");
      // Each changed chunk costs its changed page and an 8-byte bitmap (256 KiB chunks: 64
      // blocks), not the whole chunk, in a frame of 5 bytes' head (random pages go raw).
      assert.equal(received, changed.length * (5 + 4096 + 8));
    } finally {
      await lab.close();
      if (device) await detachLoop(device);
    }
  },
});
