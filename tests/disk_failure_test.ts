// A disk that fails writes part-way (a disk with bad sectors; here, one that runs out of space):
// the client retries a few times with backoff, then stops with the disk, the byte offset and the
// OS error; the master records one failure per try, blames no server, and the other PCs of the
// run are imaged as usual.
import assert from "node:assert/strict";
import { makeLab, waitExit } from "./lab_kit.ts";
import { DiskError, runClient } from "../roles/peers/mod.ts";
import { memoryTarget } from "../roles/data/testkit.ts";

const MiB = 1024 * 1024;

Deno.test("a disk that fails writes part-way: retries with backoff, then one clear disk failure", async () => {
  const lab = await makeLab(4 * MiB);
  try {
    const url = await lab.master(["--mode", "classic", "--expect", "1", "--linger", "0"]);
    lab.fake("fake", url);
    // 1.5 MiB of the 4 MiB fit: writes past it fail as a full file system's would.
    const disk = memoryTarget(4 * MiB);
    const fits = 1.5 * MiB;
    const write = disk.writeAt.bind(disk);
    disk.writeAt = (offset, data) =>
      offset + data.length > fits
        ? Promise.reject(new Error("No space left on device (os error 28)"))
        : write(offset, data);
    const t0 = performance.now();
    const err = await runClient({
      masterUrl: url,
      target: "/dev/lab-disk",
      open: () => Promise.resolve(disk),
      diskRetries: 2,
      diskBackoff: 0.3,
      name: "bad-disk",
      mac: "52:54:00:00:0d:01",
      capacity: 1,
      after: "poweroff",
      listen: "127.0.0.1",
      inflight: 2,
      verifyMd5: true,
      progress: "quiet",
      log: () => {},
      masterTimeout: 30,
    }).then(() => null, (e) => e);
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(err instanceof DiskError, `expected a DiskError, got ${err}`);
    assert.match(
      err.message,
      /^Cannot write chunk \d+ of "golden\.img" to "memory" at byte \d+: No space left on device \(os error 28\) \(3 tries: giving up\)$/,
    );
    assert.ok(seconds >= 0.9, `backed off 0.3 + 0.6 s between the tries (took ${seconds} s)`);

    // Another PC of the same run is imaged as usual.
    lab.client("good", url, ["--after", "poweroff"]);
    assert.equal(await waitExit(lab, "good", 60_000), 0);
    assert.ok(await lab.matches("good"));

    // The run ends once the good PC verified (--expect 1); its final status is on file.
    assert.equal(await waitExit(lab, "master", 30_000), 0);
    const status = JSON.parse(await Deno.readTextFile(`${lab.dir}/status.json`));
    const bad = status.peers.find((p: { name: string }) => p.name === "bad-disk")!;
    assert.equal(bad.state, "failed");
    assert.equal(bad.disk, "/dev/lab-disk");
    assert.deepEqual(bad.failures.map((f: { reason: string }) => f.reason), [
      "disk",
      "disk",
      "disk",
    ]);
    const fake = status.peers.find((p: { name: string }) => p.name === "fake")!;
    assert.deepEqual(fake.failures, [], "no server is blamed for the PC's disk");
  } finally {
    await lab.close();
  }
});

Deno.test("a disk that fails before any server (it cannot be opened): the master is told", async () => {
  const lab = await makeLab(4 * MiB);
  try {
    const url = await lab.master(["--mode", "classic", "--expect", "1", "--linger", "0"]);
    lab.fake("fake", url);
    const cause = 'Cannot use target "/dev/lab-disk": Input/output error (os error 5)';
    const err = await runClient({
      masterUrl: url,
      target: "/dev/lab-disk",
      open: () => Promise.reject(new Error(cause)),
      name: "no-open",
      mac: "52:54:00:00:0d:02",
      capacity: 1,
      after: "poweroff",
      listen: "127.0.0.1",
      inflight: 2,
      verifyMd5: true,
      progress: "quiet",
      log: () => {},
      masterTimeout: 30,
    }).then(() => null, (e) => e);
    assert.ok(err instanceof DiskError, `expected a DiskError, got ${err}`);
    assert.equal(err.message, cause);

    // The master shows it (not only the PC's console): a disk failure, no server named or blamed.
    const s = await lab.status(url);
    const bad = s.peers.find((p: { name: string }) => p.name === "no-open")!;
    assert.equal(bad.state, "failed");
    assert.equal(bad.disk, "/dev/lab-disk");
    assert.deepEqual(
      bad.failures.map((f: { reason: string; detail: string; server?: string }) => [
        f.reason,
        f.detail,
        f.server,
      ]),
      [["disk", cause, undefined]],
    );
    const blamed = s.peers.filter((p: { role: string; failures: unknown[] }) =>
      p.role !== "client" && p.failures.length > 0
    );
    assert.deepEqual(blamed, [], "no server is blamed for the PC's disk");

    // The run goes on for the other PCs.
    lab.client("good", url, ["--after", "poweroff"]);
    assert.equal(await waitExit(lab, "good", 60_000), 0);
    assert.ok(await lab.matches("good"));
  } finally {
    await lab.close();
  }
});
