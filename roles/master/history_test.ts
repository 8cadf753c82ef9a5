import assert from "node:assert/strict";
import { join } from "node:path";
import { type HistoryPc, openHistory } from "./history.ts";
import { recordRun } from "./history_record.ts";
import { renderAdminActions, renderRun, renderRuns } from "./history_cli.ts";
import { run } from "../../cascade.ts";
import { coreHarness, IMAGE_ID, playSample } from "./testkit.ts";

/** 2026-11-26 09:00:00 UTC at core time 1000 s (the testkit's start). */
const T0 = Date.UTC(2026, 10, 26, 9, 0, 0);
const toWall = (at: number) => T0 + (at - 1000) * 1000;
const utc = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");

async function withDir(fn: (dir: string) => Promise<void> | void) {
  const dir = await Deno.makeTempDir({ prefix: "cascade-history-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The sample run recorded into `path`, ended 3 s after the sample's last step. */
function recordSample(path: string) {
  const h = coreHarness({ expect: 8 });
  const history = openHistory(path);
  const logs: string[] = [];
  recordRun(history, h.core, {
    imageName: "lab-2026.img",
    toWall,
    log: (e, f) => logs.push(`${e} ${JSON.stringify(f)}`),
  });
  playSample(h);
  h.time.now += 3;
  h.core.end("stopped for the test");
  return { h, history, logs };
}

function pc(peer: string, o: Partial<HistoryPc>): HistoryPc {
  return {
    runId: 1,
    peer,
    mac: null,
    address: `10.0.1.${peer.slice(-1)}`,
    imageId: IMAGE_ID,
    startedAt: T0 + 3000,
    endedAt: null,
    bytes: 0,
    verified: false,
    readbackSeconds: null,
    servedBy: [],
    state: "receiving",
    failures: [],
    disk: null,
    diskReason: null,
    finish: null,
    boots: [],
    ...o,
  };
}

Deno.test("history: a run, each PC's result and its failures, as they happened", async () => {
  await withDir((dir) => {
    const { history } = recordSample(join(dir, "h.sqlite"));
    try {
      assert.deepEqual(history.runs(), [{
        id: 1,
        startedAt: T0,
        endedAt: T0 + 45_000,
        endReason: "stopped for the test",
        imageId: IMAGE_ID,
        imageName: "lab-2026.img",
        mode: "classic",
        expect: 8,
        pcs: 7,
        verified: 1,
      }]);
      const MiB = 1024 * 1024;
      assert.deepEqual(history.pcs(1), [
        pc("pc-01", {
          mac: "52:54:00:00:01:01",
          startedAt: T0 + 1000,
          endedAt: T0 + 13_000,
          bytes: 64 * MiB,
          verified: true,
          readbackSeconds: 1.2,
          servedBy: ["fake-server"],
          state: "done",
        }),
        pc("pc-02", {
          mac: "52:54:00:00:01:02",
          startedAt: T0 + 1000,
          bytes: 64 * MiB,
          servedBy: ["fake-server"],
          state: "verifying",
        }),
        pc("pc-03", { bytes: 48 * MiB, servedBy: ["pc-01"] }),
        pc("pc-04", { bytes: 30 * MiB, servedBy: ["pc-01"] }),
        pc("pc-05", { bytes: 9 * MiB, servedBy: ["pc-01"] }),
        pc("pc-07", {
          endedAt: T0 + 37_000,
          servedBy: ["fake-server"], // left within its backoff with it
          state: "left",
          failures: [{
            at: T0 + 36_000,
            reason: "bad-chunk",
            detail: 'Chunk 12 failed its SHA-256 check from "fake-server"',
            server: "fake-server",
          }],
        }),
        pc("pc-06", { startedAt: T0 + 38_000, state: "waiting" }),
      ]);
    } finally {
      history.close();
    }
  });
});

Deno.test("history: survives the master: reopened, the old run is there and a new one follows", async () => {
  await withDir((dir) => {
    const path = join(dir, "h.sqlite");
    recordSample(path).history.close();
    const again = recordSample(path);
    again.history.close();
    const reader = openHistory(path, { readOnly: true });
    try {
      assert.deepEqual(reader.runs().map((r) => [r.id, r.pcs, r.verified]), [[2, 7, 1], [1, 7, 1]]);
      assert.equal(reader.pcs(1).length, 7);
      assert.equal(reader.run(1)?.endReason, "stopped for the test");
      assert.equal(reader.run(3), undefined);
    } finally {
      reader.close();
    }
  });
});

Deno.test("history: a history that cannot be written is logged once and never stops the run", async () => {
  await withDir((dir) => {
    const h = coreHarness({ expect: 8 });
    const history = openHistory(join(dir, "h.sqlite"));
    const logs: string[] = [];
    recordRun(history, h.core, { imageName: "x", toWall, log: (e) => logs.push(e) });
    history.close(); // the disk went away
    playSample(h);
    h.core.end("done");
    assert.deepEqual(logs, ["history", "history-error"]);
    assert.equal(h.core.peers.get("pc-01")?.state, "done");
  });
});

Deno.test("history: a file that is not a database is a clear error", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "notes.txt");
    await Deno.writeTextFile(path, "not sqlite at all, just some text ".repeat(100));
    assert.throws(() => openHistory(path), /^Error: Cannot open the run history ".*notes\.txt": /);
  });
});

Deno.test("history: the printed runs and a run's PCs", async () => {
  await withDir((dir) => {
    const { history } = recordSample(join(dir, "h.sqlite"));
    try {
      assert.equal(
        renderRuns(history.runs(), utc),
        [
          "run  started              time  image                        mode     verified  end",
          "---  -------------------  ----  ---------------------------  -------  --------  --------------------",
          "1    2026-11-26 09:00:00  45s   lab-2026.img (abababababab)  classic  1/7       stopped for the test",
        ].join("\n"),
      );
      assert.equal(
        renderRun(history.runs()[0], history.pcs(1), utc),
        [
          'Run 1: "lab-2026.img" (abababababab), classic mode, started 2026-11-26 09:00:00, ' +
          "1 of 7 PCs verified; ended after 45s: stopped for the test",
          "",
          "PC     address   MAC                started   time  bytes     verified        served by    failures",
          "-----  --------  -----------------  --------  ----  --------  --------------  -----------  --------",
          "pc-01  10.0.1.1  52:54:00:00:01:01  09:00:01  12s   64.0 MiB  yes             fake-server  0",
          "pc-02  10.0.1.2  52:54:00:00:01:02  09:00:01  -     64.0 MiB  NO (verifying)  fake-server  0",
          "pc-03  10.0.1.3  -                  09:00:03  -     48.0 MiB  NO (receiving)  pc-01        0",
          "pc-04  10.0.1.4  -                  09:00:03  -     30.0 MiB  NO (receiving)  pc-01        0",
          "pc-05  10.0.1.5  -                  09:00:03  -     9.0 MiB   NO (receiving)  pc-01        0",
          "pc-07  10.0.1.7  -                  09:00:03  34s   0 B       NO (left)       fake-server  1",
          "pc-06  10.0.1.6  -                  09:00:38  -     0 B       NO (waiting)    -            0",
          "",
          "Failures:",
          '  09:00:36  pc-07: bad-chunk (server fake-server): Chunk 12 failed its SHA-256 check from "fake-server"',
        ].join("\n"),
      );
      assert.equal(renderRuns([]), "No runs recorded yet.");
    } finally {
      history.close();
    }
  });
});

Deno.test("cascade history: --json, --run, and a missing database", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "h.sqlite");
    recordSample(path).history.close();
    const out: string[] = [];
    const err: string[] = [];
    const { log, error } = console;
    console.log = (s: string) => out.push(s);
    console.error = (s: string) => err.push(s);
    try {
      assert.equal(await run(["history", "--db", path, "--json", "--run", "1"]), 0);
      const json = JSON.parse(out.join("\n"));
      assert.equal(json.run.endReason, "stopped for the test");
      assert.deepEqual(json.pcs.map((p: HistoryPc) => p.peer), [
        "pc-01",
        "pc-02",
        "pc-03",
        "pc-04",
        "pc-05",
        "pc-07",
        "pc-06",
      ]);
      out.length = 0;
      assert.equal(await run(["history", "--db", path]), 0);
      assert.ok(out.join("\n").startsWith("run  started"));
      assert.match(out.join("\n"), /\nRun 1: "lab-2026\.img"/);
      assert.equal(await run(["history", "--db", path, "--run", "7"]), 2);
      assert.equal(await run(["history", "--db", join(dir, "none.sqlite")]), 1);
    } finally {
      console.log = log;
      console.error = error;
    }
    assert.deepEqual(err, [
      `cascade history: No run 7 in "${path}"`,
      `cascade history: No run history at "${
        join(dir, "none.sqlite")
      }": the master writes it beside the slices folder (or where --history says); pass --db FILE`,
    ]);
  });
});

Deno.test("history: boot answers, the disk a PC chose and a failed finishing step", async () => {
  await withDir((dir) => {
    const h = coreHarness({ expect: 8, linger: 0 });
    const history = openHistory(join(dir, "h.sqlite"));
    try {
      recordRun(history, h.core, { imageName: "lab.img", toWall, log: () => {} });
      const mac = "52:54:00:00:00:0a";
      h.core.bootAnswered("52:54:00:00:00:99", "10.0.0.99", {
        action: "local",
        reason: "not-enrolled",
      });
      h.core.bootAnswered(mac, "10.0.0.10", { action: "image", group: "lab" });
      h.hello("fake", "fake");
      h.open("pc-10", "10.0.0.10"); // from the address it booted from
      h.hello("pc-10", "client", {
        mac,
        disk: "/dev/nvme0n1",
        diskReason: 'Chose /dev/nvme0n1 by target rule "auto"',
      });
      h.core.tick(); // linger 0: the short batch goes out
      h.say("pc-10", { type: "received" });
      h.say("pc-10", { type: "verified", ok: true, bad: [], seconds: 1 });
      h.prove("pc-10");
      assert.equal(history.imagedWith(mac), IMAGE_ID);
      h.say("pc-10", {
        type: "finished",
        ok: false,
        step: "hostname.sh",
        detail: 'Finishing step "hostname.sh" failed (exit code 1) after 0.1 s: no ext4 partition',
      });
      h.drop("pc-10");
      const [pc] = history.pcs(1).filter((p) => p.peer === "pc-10");
      assert.equal(pc.disk, "/dev/nvme0n1");
      assert.equal(pc.diskReason, 'Chose /dev/nvme0n1 by target rule "auto"');
      assert.deepEqual(pc.finish, {
        ok: false,
        step: "hostname.sh",
        detail: 'Finishing step "hostname.sh" failed (exit code 1) after 0.1 s: no ext4 partition',
      });
      assert.equal(pc.verified, false);
      assert.equal(pc.state, "failed");
      assert.deepEqual(pc.boots.map((b) => [b.answer, b.group]), [["image", "lab"]]);
      assert.deepEqual(history.boots(1).map((b) => [b.mac, b.answer]), [
        ["52:54:00:00:00:99", "local:not-enrolled"],
        [mac, "image"],
      ]);
      // A disk whose finishing step failed is imaged again at its next boot.
      assert.equal(history.imagedWith(mac), null);
    } finally {
      history.close();
    }
  });
});

Deno.test("history: a MAC's boot answers since a time, admin actions newest first, a group's enrolled PCs", async () => {
  const dir = await Deno.makeTempDir();
  const h = openHistory(`${dir}/h.sqlite`);
  try {
    const run = h.startRun({ startedAt: 1000, imageId: "ab", imageName: "x", mode: "relay" });
    const mac = "52:54:00:00:00:01";
    h.addBoot(run, { mac, at: 500, address: "10.0.0.1", answer: "image" });
    h.addBoot(run, { mac, at: 2000, address: "10.0.0.1", answer: "image", group: "lab" });
    h.addBoot(run, { mac: "52:54:00:00:00:02", at: 2100, address: "10.0.0.2", answer: "image" });
    h.addBoot(run, { mac, at: 3000, address: "10.0.0.1", answer: "local:imaged" });
    assert.deepEqual(h.bootsOf(mac, 1000), [
      { at: 2000, address: "10.0.0.1", answer: "image", group: "lab" },
      { at: 3000, address: "10.0.0.1", answer: "local:imaged", group: null },
    ]);
    assert.deepEqual(h.bootsOf(mac, 0, 1).map((b) => b.at), [3000], "the latest within the limit");
    const a = { by: "ann@10.0.0.9", session: "session:1", image: null, detail: "{}" };
    h.addAdminAction({ ...a, at: 1, action: "pause" });
    h.addAdminAction({ ...a, at: 2, action: "end", image: "office" });
    assert.deepEqual(h.adminActions().map((x) => [x.action, x.image]), [
      ["end", "office"],
      ["pause", null],
    ]);
    assert.equal(
      renderAdminActions(h.adminActions(), utc),
      [
        "when                 action  image   by            sign-in    detail",
        "-------------------  ------  ------  ------------  ---------  ------",
        "1970-01-01 00:00:00  end     office  ann@10.0.0.9  session:1  {}",
        "1970-01-01 00:00:00  pause   -       ann@10.0.0.9  session:1  {}",
      ].join("\n"),
    );
    h.enrol("52:54:00:00:00:03", "lab", 1);
    h.enrol("52:54:00:00:00:04", "", 2);
    assert.deepEqual(h.enrolledIn("lab"), ["52:54:00:00:00:03"]);
  } finally {
    h.close();
    await Deno.remove(dir, { recursive: true });
  }
});
