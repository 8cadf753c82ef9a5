import assert from "node:assert/strict";
import { dashboardTitle, failureNote, renderDashboardMain, renderDashboardPage } from "./page.ts";
import { type LiveStatus, liveStatus } from "../mod.ts";
import { SAMPLE_MANIFEST, sampleRun } from "../testkit.ts";

function sample(): LiveStatus {
  const h = sampleRun();
  return liveStatus(h.core, SAMPLE_MANIFEST, h.time.now);
}

function rows(html: string): string[] {
  return html.split("\n").filter((l) => l.startsWith("<tr"));
}

Deno.test("dashboard: one row per PC with its state, progress, rate, ETA and server", () => {
  const r = rows(renderDashboardMain(sample()));
  assert.deepEqual(r.map((l) => /data-peer="([^"]+)" data-state="(\w+)"/.exec(l)?.slice(1)), [
    ["fake-server", "serving"],
    ["52:54:00:00:01:09", "booting"],
    ["pc-01", "serving"],
    ["pc-02", "verifying"],
    ["pc-03", "receiving"],
    ["pc-04", "receiving"],
    ["pc-05", "receiving"],
    ["pc-06", "waiting"],
    ["pc-07", "failed"],
    undefined, // pc-07's note
  ]);
  assert.equal(
    r[4],
    '<tr data-peer="pc-03" data-state="receiving"><td class="pc"><b>pc-03</b>' +
      '<small>10.0.1.3</small></td><td><span class="pill st-receiving">receiving</span></td>' +
      '<td><div class="prog"><div class="bar"><i class="st-receiving" style="width:75%"></i>' +
      '</div><span>75%</span></div></td><td class="num">5.5 MiB/s</td>' +
      '<td class="num">2.9s</td><td>pc-01</td><td class="to"></td></tr>',
  );
  assert.equal(
    r[2],
    '<tr data-peer="pc-01" data-state="serving"><td class="pc"><b>pc-01</b>' +
      "<small>10.0.1.1 · 52:54:00:00:01:01</small></td>" +
      '<td><span class="pill st-serving">serving</span></td>' +
      '<td><div class="prog"><div class="bar"><i class="st-serving" style="width:100%"></i>' +
      '</div><span>100%</span></div></td><td class="num"></td><td class="num"></td>' +
      '<td>fake-server</td><td class="to">pc-03 pc-04 pc-05</td></tr>',
  );
});

Deno.test("dashboard: a failed PC shows why, on a line of its own", () => {
  const r = rows(renderDashboardMain(sample()));
  assert.equal(
    r.at(-1),
    '<tr class="note bad"><td colspan="7">Left the run unimaged; after bad-chunk: Chunk 12 ' +
      "failed its SHA-256 check from &#34;fake-server&#34; (server fake-server)</td></tr>",
  );
  const s = sample();
  const pc06 = s.peers.find((p) => p.id === "pc-06")!;
  assert.equal(failureNote(pc06), "");
  pc06.failures = [
    { at: 1, reason: "http-503", detail: "Server busy", server: "pc-04" },
    { at: 2, reason: "timeout", detail: "No byte in 10 s", server: "pc-05" },
  ];
  assert.equal(
    failureNote(pc06),
    "Retrying after 2 failures, the last: timeout: No byte in 10 s (server pc-05)",
  );
  pc06.state = "left";
  pc06.failures = [];
  assert.equal(failureNote(pc06), "Left the run unimaged");
});

Deno.test("dashboard: totals, overall progress, ETA, queues and the tree", () => {
  const html = renderDashboardMain(sample());
  assert.ok(html.includes('<div class="headline"><b>1 of 8 PCs imaged</b><span>41%</span></div>'));
  assert.ok(html.includes("<span>elapsed <b>42s</b></span><span>ETA <b>22s</b></span>"));
  for (
    const [n, what] of [
      ["1", "imaged"],
      ["3", "receiving"],
      ["1", "waiting"],
      ["1", "failed"],
      ["2", "serving"],
      ["1", "booting"],
      ["12.0 MiB/s", "total rate"],
    ]
  ) assert.ok(html.includes(`<b>${n}</b><span>${what}</span>`), what);
  assert.ok(html.includes('<span class="chip">fake-server <small>×2</small></span>'));
  assert.ok(html.includes('<span class="chip">pc-06 <small>4.0s</small></span>'));
  assert.equal(html.match(/<g class="node /g)?.length, 6, "fake, pc-01..05 in the tree");
  assert.ok(html.includes('<div class="run running">Running</div>'));
});

Deno.test("dashboard: paused, draining and ended runs say so", () => {
  const s = sample();
  const badge = (x: LiveStatus) => /<div class="run (\w+)">([^<]*)</.exec(renderDashboardMain(x))!;
  assert.deepEqual(badge({ ...s, paused: true }).slice(1), [
    "paused",
    "Paused: no new assignments",
  ]);
  assert.deepEqual(badge({ ...s, draining: true }).slice(1), [
    "paused",
    "Draining: no new PCs admitted",
  ]);
  const ended = { ...s, ended: "all 8 expected PCs verified", eta: null };
  assert.deepEqual(badge(ended).slice(1), ["ended", "Ended: all 8 expected PCs verified"]);
  assert.ok(renderDashboardMain(ended).includes("<span>ETA <b>done</b></span>"));
  assert.equal(dashboardTitle(ended), "Cascade: 1/8 imaged (ended)");
});

Deno.test("dashboard: the page is self-contained and escapes what peers and images name", () => {
  const s = sample();
  s.image.name = '<img src="http://evil.example/x.png">';
  const page = renderDashboardPage(s);
  assert.ok(page.startsWith("<!doctype html>\n"));
  assert.ok(page.includes("&#60;img src=&#34;http://evil.example/x.png&#34;&#62;"));
  // Nothing is fetched from anywhere: no src, href, @import or url() at all.
  assert.doesNotMatch(page, /\s(src|href)="|@import|url\(/);
  assert.equal(page.match(/<script>/g)?.length, 1);
  assert.equal(page.match(/<style>/g)?.length, 1);
  assert.ok(page.includes('new EventSource("api/v1/events?view=dashboard")'));
  assert.ok(page.includes('<noscript><meta http-equiv="refresh" content="5"></noscript>'));
  assert.ok(page.includes(`<main id="live">\n${renderDashboardMain(s)}\n</main>`));
});

Deno.test("dashboard: many PCs pack the table tighter", () => {
  const s = sample();
  assert.ok(!renderDashboardMain(s).includes('<table class="many">'));
  const many = Array.from({ length: 15 }, (_, i) => ({ ...s.peers[7], id: `pc-${i + 10}` }));
  assert.ok(renderDashboardMain({ ...s, peers: many }).includes('<table class="many">'));
});
