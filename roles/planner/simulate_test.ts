import assert from "node:assert/strict";
import { autoStep, imagedAt, simulate, type SimulateParams, timelineTable } from "./simulate.ts";
import { renderSvg } from "./simulate_svg.ts";
import { parseModes } from "./cli.ts";

const MiB = 1024 * 1024;
// 10 s per whole image at full port rate keeps the arithmetic readable.
const S = 125e6;
const B = 12.5e6;
const delta = MiB / B;

/** Times agree to a nanosecond (they are sums of float divisions). */
function near(actual: number, expected: number, what: string) {
  assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: expected ${expected}, got ${actual}`);
}

Deno.test("simulate: classic with 20-minute transfers reproduces the seed's table", () => {
  const r = simulate({
    mode: "classic",
    pcs: 682,
    size: 6e9,
    rate: B,
    transferTime: 20 * 60,
    fakeCapacity: 2,
    capacity: 3,
  });
  assert.equal(r.mode, "classic");
  assert.equal(r.finish, 6000);
  assert.deepEqual(r.timeline, [
    { t: 0, imaged: 0 },
    { t: 1200, imaged: 2 },
    { t: 2400, imaged: 10 },
    { t: 3600, imaged: 42 },
    { t: 4800, imaged: 170 },
    { t: 6000, imaged: 682 },
  ]);
  assert.deepEqual([0, 20, 40, 60, 80, 100].map((m) => imagedAt(r, m * 60)), [
    0,
    2,
    10,
    42,
    170,
    682,
  ]);
  assert.equal(imagedAt(r, 1199), 0);
  // The first two came from the fake server; every PC has a start, end and server.
  assert.deepEqual(r.perPc.slice(0, 2), [
    { id: "pc1", start: 0, end: 1200, server: "fake" },
    { id: "pc2", start: 0, end: 1200, server: "fake" },
  ]);
  assert.equal(r.perPc.length, 682);
  for (const p of r.perPc) assert.equal(p.end - p.start, 1200, p.id);
});

Deno.test("simulate: the CLI prints the seed's table", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "cascade.ts",
      "simulate",
      "--mode",
      "classic",
      "--pcs",
      "682",
      "--transfer-time",
      "20m",
      "--fake-capacity",
      "2",
      "--capacity",
      "3",
    ],
    cwd: new URL("../..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(new TextDecoder().decode(out.stderr), "");
  assert.equal(out.code, 0);
  assert.equal(
    text,
    [
      "Plan: 682 PCs, image 5.6 GiB, every transfer takes 20m00s (fixed), chunk 1.0 MiB",
      "fake server 2 at a time (1 in relay mode), servers 3 at a time, relay fan-out 1, linger 10s",
      "",
      "  time  classic",
      "    0m        0",
      "   20m        2",
      "   40m       10",
      "   60m       42",
      "   80m      170",
      "  100m      682",
      "",
      "finish:",
      "  classic  1h40m (6000.0 s)",
      "",
    ].join("\n"),
  );
});

Deno.test("simulate: a relay chain finishes in S/B + (N-1)·δ when a chunk goes on only once whole", () => {
  // The default fake capacity 2 is capped at fan-out 1 in relay mode, as the master does.
  const r = simulate({ mode: "relay", pcs: 5, size: S, rate: B, cutThrough: false });
  r.perPc.forEach((p, k) => {
    assert.equal(p.server, k === 0 ? "fake" : `pc${k}`, p.id);
    assert.equal(p.start, 0, p.id);
    near(p.end, S / B + k * delta, p.id);
  });
  near(r.finish, 10 + 4 * delta, "finish");
  assert.equal(r.timeline.length, 6);
});

Deno.test("simulate: efficiency scales every port's image bytes, not the disk", () => {
  const full = simulate({ mode: "relay", pcs: 5, size: S, rate: B }).finish;
  near(
    simulate({ mode: "relay", pcs: 5, size: S, rate: B, efficiency: 0.5 }).finish,
    2 * full,
    "half",
  );
  const disk = simulate({ mode: "relay", pcs: 3, size: S, rate: B, diskRate: B / 4 }).finish;
  near(
    simulate({ mode: "relay", pcs: 3, size: S, rate: B, diskRate: B / 4, efficiency: 0.5 }).finish,
    disk,
    "the disk still sets the pace",
  );
});

Deno.test("simulate: the disk caps the rate, and the hop is one chunk at that rate", () => {
  const r = simulate({ mode: "relay", pcs: 3, size: S, rate: B, diskRate: B / 4 });
  r.perPc.forEach((p) => near(p.end, 40, `${p.id}, cut-through`));
  const whole = simulate({
    mode: "relay",
    pcs: 3,
    size: S,
    rate: B,
    diskRate: B / 4,
    cutThrough: false,
  });
  whole.perPc.forEach((p, k) => near(p.end, 40 + k * 4 * delta, p.id));
});

Deno.test("simulate: fan-out 2 splits uplinks, and no relay outruns its upstream", () => {
  // fake -> pc1, pc2 at B/2; pc1 -> pc3, pc4 at B/2 each (pc1's uplink split two ways).
  const r = simulate({
    mode: "relay",
    pcs: 4,
    size: S,
    rate: B,
    fakeCapacity: 2,
    relayFanout: 2,
    cutThrough: false,
  });
  assert.deepEqual(r.perPc.map((p) => p.server), ["fake", "fake", "pc1", "pc1"]);
  near(r.perPc[0].end, 20, "pc1");
  near(r.perPc[1].end, 20, "pc2");
  // Its last chunk comes at its own rate, B/2: a hop of 2δ.
  near(r.perPc[2].end, 20 + 2 * delta, "pc3");
  near(r.perPc[3].end, 20 + 2 * delta, "pc4");
  // Twice as slow as the chain, as roles/master/scheduler.ts explains.
  near(
    simulate({ mode: "relay", pcs: 4, size: S, rate: B, cutThrough: false }).finish,
    10 + 3 * delta,
    "chain",
  );
  // A late joiner (pc3 alone waits out the 10 s linger for pc1) is held to pc1's B/2 while pc1
  // receives, then runs at B: 10 s at B/2, 5 s at B. (Pessimistic: documented in the model.)
  const late = simulate({
    mode: "relay",
    pcs: 3,
    size: S,
    rate: B,
    fakeCapacity: 2,
    relayFanout: 2,
  });
  assert.deepEqual(late.perPc[2], { id: "pc3", start: 10, end: 25, server: "pc1" });
});

Deno.test("simulate: classic shares each uplink among the batch; the last PC lingers", () => {
  const r = simulate({ mode: "classic", pcs: 3, size: S, rate: B });
  // fake serves pc1 + pc2 at B/2 (20 s); pc3 waits, then pc1 serves it alone at B.
  assert.deepEqual(r.perPc, [
    { id: "pc1", start: 0, end: 20, server: "fake" },
    { id: "pc2", start: 0, end: 20, server: "fake" },
    { id: "pc3", start: 20, end: 30, server: "pc1" },
  ]);
  assert.deepEqual(r.timeline, [{ t: 0, imaged: 0 }, { t: 20, imaged: 2 }, { t: 30, imaged: 3 }]);
});

Deno.test("simulate: a lone PC waits out the linger for a partial batch", () => {
  const r = simulate({ mode: "classic", pcs: 1, size: S, rate: B, linger: 7 });
  assert.deepEqual(r.perPc, [{ id: "pc1", start: 7, end: 17, server: "fake" }]);
});

Deno.test("simulate: unicast serves everyone from the fake server at once", () => {
  const r = simulate({ mode: "unicast", pcs: 12, size: S, rate: B, fakeCapacity: 2 });
  for (const p of r.perPc) {
    assert.equal(p.server, "fake");
    near(p.end, 120, p.id);
  }
  assert.equal(r.timeline.length, 2);
});

Deno.test("simulate: edge cases and bad parameters", () => {
  assert.deepEqual(simulate({ mode: "relay", pcs: 0, size: S, rate: B }), {
    mode: "relay",
    finish: 0,
    timeline: [{ t: 0, imaged: 0 }],
    perPc: [],
  });
  const base: SimulateParams = { mode: "classic", pcs: 2, size: S, rate: B };
  assert.throws(() => simulate({ ...base, pcs: 1.5 }), /Invalid PC count "1.5"/);
  assert.throws(() => simulate({ ...base, rate: 0 }), /Invalid port rate "0": must be > 0/);
  assert.throws(() => simulate({ ...base, efficiency: 0 }), /Invalid efficiency "0"/);
  assert.throws(() => simulate({ ...base, capacity: 0 }), RangeError);
  assert.throws(() => simulate({ ...base, mode: "mesh" as "relay" }), TypeError);
});

Deno.test("simulate: timeline table and step", () => {
  const runs = [
    simulate({ mode: "classic", pcs: 3, size: S, rate: B }),
    simulate({ mode: "relay", pcs: 3, size: S, rate: B }),
  ];
  assert.equal(autoStep(30), 5);
  assert.equal(autoStep(6720), 600);
  assert.equal(
    timelineTable(runs, 5),
    [
      "  time  classic  relay",
      "    0s        0      0",
      "    5s        0      0",
      "   10s        0      3",
      "   15s        0      3",
      "   20s        2      3",
      "   25s        2      3",
      "   30s        3      3",
      "",
    ].join("\n"),
  );
  assert.deepEqual(parseModes("both"), ["classic", "relay"]);
  assert.deepEqual(parseModes("all"), ["unicast", "classic", "relay"]);
  assert.deepEqual(parseModes("relay,unicast"), ["relay", "unicast"]);
  assert.throws(() => parseModes("mesh"), /Invalid --mode "mesh"/);
});

Deno.test("simulate: the SVG chart matches its golden file", async () => {
  const runs = (["unicast", "classic", "relay"] as const).map((mode) =>
    simulate({ mode, pcs: 4, size: S, rate: B })
  );
  const svg = renderSvg(runs, { title: "4 PCs <test>" });
  const url = new URL("./testdata/simulate_chart.svg.golden", import.meta.url);
  if (Deno.env.get("CASCADE_UPDATE_GOLDEN") === "1") await Deno.writeTextFile(url, svg);
  assert.equal(svg, await Deno.readTextFile(url));
  assert.match(svg, /4 PCs &#60;test&#62;/);
});

Deno.test("simulate: the CLI rejects a bad mode with exit 2 and writes --json and --svg", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = (...args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "cascade.ts", "simulate", ...args],
        cwd: new URL("../..", import.meta.url),
        stdout: "piped",
        stderr: "piped",
      }).output();
    const bad = await run("--mode", "mesh");
    assert.equal(bad.code, 2);
    assert.equal(
      new TextDecoder().decode(bad.stderr),
      'cascade simulate: Invalid --mode "mesh": expected classic, relay, unicast, both, all or a comma list\n',
    );
    const svg = `${dir}/plan.svg`;
    const ok = await run(
      "--pcs",
      "3",
      "--size",
      "125MB",
      "--efficiency",
      "1",
      "--json",
      "--svg",
      svg,
    );
    assert.equal(ok.code, 0);
    const json = JSON.parse(new TextDecoder().decode(ok.stdout));
    assert.deepEqual(json.results.map((r: { mode: string }) => r.mode), ["classic", "relay"]);
    assert.equal(json.results[0].finish, 30);
    assert.equal(json.params.size, 125e6);
    // By default only TCP over Ethernet's payload share of each port carries image bytes.
    const tcp = JSON.parse(
      new TextDecoder().decode((await run("--pcs", "3", "--size", "125MB", "--json")).stdout),
    );
    assert.equal(tcp.params.efficiency, 0.9415);
    assert.ok(Math.abs(tcp.results[0].finish - 30 / 0.9415) < 1e-9);
    const share = await run("--efficiency", "1.5");
    assert.equal(share.code, 2);
    assert.equal(
      new TextDecoder().decode(share.stderr),
      'cascade simulate: Invalid --efficiency "1.5": expected a number above 0 and at most 1\n',
    );
    assert.match(await Deno.readTextFile(svg), /^<svg [^]*<\/svg>\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** 12 PCs in relay mode with whole-chunk hops: a chain's length shows in its finish. */
const ROOM12 = {
  mode: "relay",
  pcs: 12,
  size: S,
  rate: B,
  linger: 2,
  cutThrough: false,
} as const;

Deno.test("simulate: rooms that are not flat: a slow port at the end, switches crossed once", () => {
  const common = ROOM12;
  const flat = simulate(common);
  // pc5 at a tenth of the rate: a leaf from its probe, served last; the 11 others as if flat.
  const slow = simulate({ ...common, ports: { 5: B / 10 } });
  const pc5 = slow.perPc.find((p) => p.id === "pc5")!;
  near(pc5.end, 10 * S / B, "the slow PC takes its own port's time");
  const others = Math.max(...slow.perPc.filter((p) => p !== pc5).map((p) => p.end));
  near(others, S / B + 10 * delta, "the 11 others: a chain of 11");
  assert.ok(others < flat.finish);
  // Two switches of 6, an uplink of 2 ports' worth: the chain crosses it once, as fast as flat.
  const switchOf = Object.fromEntries([2, 4, 6, 7, 9, 12].map((k) => [k, 2]));
  const two = simulate({ ...common, switchOf, uplink: 2 * B });
  near(two.finish, flat.finish, "two switches, one crossing");
  // An uplink slower than a port holds the half beyond it to the uplink's rate.
  const thin = simulate({ ...common, switchOf, uplink: B / 2 });
  assert.ok(thin.finish > 1.9 * S / B, `${thin.finish}`);
  assert.throws(() => simulate({ ...common, ports: { 13: B } }), /Invalid port "13=/);
});

Deno.test("simulate: a source on a faster port feeds as many chains as the probes say", () => {
  const common = { ...ROOM12, fakeCapacity: 12 };
  const chain = simulate(common);
  // A 10x port: 10 chains, 8 of one PC and 2 of two; the longest is two hops.
  const fast = simulate({ ...common, sourceRate: 10 * B });
  const fromFake = fast.perPc.filter((p) => p.server === "fake");
  assert.equal(fromFake.length, 10);
  near(fast.finish, S / B + delta, "two hops at the port rate");
  assert.ok(fast.finish < chain.finish - 9 * delta, `${fast.finish} vs ${chain.finish}`);
  // Capped by what the source announced; a source no faster than the PCs is one chain.
  const capped = simulate({ ...common, sourceRate: 10 * B, fakeCapacity: 3 });
  assert.equal(capped.perPc.filter((p) => p.server === "fake").length, 3);
  const same = simulate({ ...common, sourceRate: B });
  assert.equal(same.perPc.filter((p) => p.server === "fake").length, 1);
  assert.throws(() => simulate({ ...common, sourceRate: 0 }), /Invalid source rate "0"/);
});

Deno.test("simulate: a chain's start-up, hop extra and finish time add as measured", () => {
  const base = { mode: "relay" as const, pcs: 4, size: S, rate: B, fakeCapacity: 1, linger: 0 };
  const plain = simulate(base);
  near(plain.finish, 10, "plain chain, cut-through");
  const r = simulate({ ...base, startup: 0.2, hopExtra: 0.01, finishTime: 0.05 });
  // Every PC of the chain waits for its own start-up (upstreams start at the same moment).
  near(r.finish, 0.2 + 10 + 3 * 0.01 + 0.05, "with fixed costs");
  near(r.perPc.find((p) => p.id === "pc1")!.end, 0.2 + 10 + 0.05, "the chain's head");
  // Whole-chunk hops (clients before cut-through): each hop one chunk's wire time more.
  const whole = simulate({
    ...base,
    cutThrough: false,
    startup: 0.2,
    hopExtra: 0.01,
    finishTime: 0.05,
  });
  near(whole.finish, 0.2 + 10 + 3 * (delta + 0.01) + 0.05, "whole-chunk hops");
});

Deno.test("simulate: a stalled relay costs those below it the detection and a new start-up", () => {
  const base = {
    mode: "relay" as const,
    pcs: 5,
    size: S,
    rate: B,
    fakeCapacity: 1,
    linger: 0,
    startup: 0.1,
  };
  const flat = simulate(base);
  const r = simulate({ ...base, stall: { position: 3, at: 3, seconds: 5, detect: 1.25 } });
  const end = (x: typeof r, id: string) => x.perPc.find((p) => p.id === id)!.end;
  near(end(r, "pc1"), end(flat, "pc1"), "above the stall");
  near(end(r, "pc2"), end(flat, "pc2"), "above the stall");
  near(end(r, "pc3"), end(flat, "pc3") + 5, "the stalled PC");
  near(end(r, "pc4"), end(flat, "pc4") + 1.35, "below the stall");
  near(end(r, "pc5"), end(flat, "pc5") + 1.35, "below the stall");
  assert.throws(
    () => simulate({ ...base, stall: { position: 0, at: 3, seconds: 5, detect: 1 } }),
    /Invalid stall/,
  );
  assert.throws(() => simulate({ ...base, startup: -1 }), /Invalid startup "-1"/);
});
