import assert from "node:assert/strict";
import { dashboardTitle, failureNote, renderDashboardPage, shownState } from "./mod.ts";
import { PAGE_SCRIPT } from "./page_script.ts";
import { feedSnapshot, type LiveStatus, liveStatus } from "../mod.ts";
import { SAMPLE_MANIFEST, sampleRun } from "../testkit.ts";

function sample(): LiveStatus {
  const h = sampleRun();
  return liveStatus(h.core, SAMPLE_MANIFEST, h.time.now);
}

Deno.test("dashboard: a failed PC says why; one still being imaged says it retries", () => {
  const failed = sample().peers.find((p) => p.id === "pc-07")!;
  assert.equal(shownState(failed), "failed");
  assert.equal(
    failureNote(failed),
    "Left the run unimaged; after bad-chunk: Chunk 12 failed its SHA-256 check from " +
      '"fake-server" (server fake-server)',
  );
  const pc06 = sample().peers.find((p) => p.id === "pc-06")!;
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

Deno.test("dashboard: the title counts the expected PCs and says when the run ended", () => {
  const s = sample();
  assert.equal(dashboardTitle(s), "Cascade: 1/8 imaged");
  assert.equal(dashboardTitle({ ...s, ended: "done" }), "Cascade: 1/8 imaged (ended)");
});

Deno.test("dashboard: the page is self-contained, carries its snapshot, escapes what peers name", () => {
  const s = sample();
  s.image.name = '</script><img src="http://evil.example/x.png">';
  const page = renderDashboardPage(feedSnapshot(s, 3), dashboardTitle(s));
  assert.ok(page.startsWith("<!doctype html>\n"));
  // Nothing is fetched from anywhere: no src, href, @import or url() at all.
  assert.doesNotMatch(page, /\s(src|href)="|@import|url\(/);
  assert.equal(page.match(/<script>/g)?.length, 1);
  assert.equal(page.match(/<\/script>/g)?.length, 2, "the image name cannot end a script");
  assert.equal(page.match(/<style>/g)?.length, 1);
  const json = /<script type="application\/json" id="snap">(.*?)<\/script>/.exec(page)![1];
  assert.deepEqual(JSON.parse(json), JSON.parse(JSON.stringify(feedSnapshot(s, 3))));
  assert.ok(page.includes('new EventSource("api/v1/feed/events" + Q)'));
  assert.ok(page.includes("<title>Cascade: 1/8 imaged</title>"));
});

Deno.test("dashboard: the page's script is valid JavaScript with the shared delta code inlined", () => {
  // Compiles (a syntax error throws here) without running: the browser test runs it.
  new Function(PAGE_SCRIPT);
  assert.match(PAGE_SCRIPT, /const applyFeedDelta = function applyFeedDelta\(snap, delta\) \{/);
  assert.match(PAGE_SCRIPT, /const chainRuns = function chainRuns\(peers\) \{/);
  assert.doesNotMatch(PAGE_SCRIPT, /: (string|number|FeedPeer)\b/, "no TypeScript left in it");
});
