import assert from "node:assert/strict";
import type { EventRecord } from "./core.ts";
import { liveStatus } from "./live_status.ts";
import { SAMPLE_MANIFEST, sampleRun } from "./testkit.ts";
import { renderMetrics, renderPortMetrics, RunCounters } from "./metrics.ts";

function countersOf(events: EventRecord[]): RunCounters {
  const c = new RunCounters();
  for (const e of events) c.observe(e);
  return c;
}

Deno.test("metrics: whole Prometheus text for a run in mid-flight", () => {
  const h = sampleRun();
  const text = renderMetrics([{
    name: "sample",
    status: liveStatus(h.core, SAMPLE_MANIFEST, h.time.now),
    counters: countersOf(h.core.events),
  }]);
  assert.equal(
    text,
    [
      "# HELP cascade_peers Peers by state and role.",
      "# TYPE cascade_peers gauge",
      'cascade_peers{image="sample",role="client",state="booting"} 1',
      'cascade_peers{image="sample",role="client",state="waiting"} 1',
      'cascade_peers{image="sample",role="client",state="receiving"} 3',
      'cascade_peers{image="sample",role="client",state="verifying"} 1',
      'cascade_peers{image="sample",role="client",state="serving"} 1',
      'cascade_peers{image="sample",role="client",state="done"} 0',
      'cascade_peers{image="sample",role="client",state="failed"} 0',
      'cascade_peers{image="sample",role="client",state="left"} 1',
      'cascade_peers{image="sample",role="server",state="booting"} 0',
      'cascade_peers{image="sample",role="server",state="waiting"} 0',
      'cascade_peers{image="sample",role="server",state="receiving"} 0',
      'cascade_peers{image="sample",role="server",state="verifying"} 0',
      'cascade_peers{image="sample",role="server",state="serving"} 0',
      'cascade_peers{image="sample",role="server",state="done"} 0',
      'cascade_peers{image="sample",role="server",state="failed"} 0',
      'cascade_peers{image="sample",role="server",state="left"} 0',
      'cascade_peers{image="sample",role="fake",state="booting"} 0',
      'cascade_peers{image="sample",role="fake",state="waiting"} 0',
      'cascade_peers{image="sample",role="fake",state="receiving"} 0',
      'cascade_peers{image="sample",role="fake",state="verifying"} 0',
      'cascade_peers{image="sample",role="fake",state="serving"} 1',
      'cascade_peers{image="sample",role="fake",state="done"} 0',
      'cascade_peers{image="sample",role="fake",state="failed"} 0',
      'cascade_peers{image="sample",role="fake",state="left"} 0',
      "# HELP cascade_clients_verified Clients whose disk passed the read-back check.",
      "# TYPE cascade_clients_verified gauge",
      'cascade_clients_verified{image="sample"} 1',
      "# HELP cascade_clients_expected Clients the run waits for (0: ends by hand).",
      "# TYPE cascade_clients_expected gauge",
      'cascade_clients_expected{image="sample"} 8',
      "# HELP cascade_bytes_received_total Bytes the clients received, as they reported them.",
      "# TYPE cascade_bytes_received_total counter",
      'cascade_bytes_received_total{image="sample"} 225443840',
      "# HELP cascade_bytes_served_total Bytes each server served, as its clients reported them.",
      "# TYPE cascade_bytes_served_total counter",
      'cascade_bytes_served_total{image="sample",server="fake-server"} 134217728',
      'cascade_bytes_served_total{image="sample",server="pc-01"} 91226112',
      "# HELP cascade_chunk_failures_total Client failures by reason: fetches that stopped, read-backs that found bad chunks.",
      "# TYPE cascade_chunk_failures_total counter",
      'cascade_chunk_failures_total{image="sample",reason="bad-chunk"} 1',
      "# HELP cascade_hellos_refused_total Hellos refused by the cap that was full (peers: the run's peer records, maxPeers).",
      "# TYPE cascade_hellos_refused_total counter",
      'cascade_hellos_refused_total{image="sample",reason="peers"} 0',
      "# HELP cascade_queue_length Peers waiting in each of the master's FIFO queues.",
      "# TYPE cascade_queue_length gauge",
      'cascade_queue_length{image="sample",queue="servers"} 1',
      'cascade_queue_length{image="sample",queue="clients"} 1',
      "# HELP cascade_assign_wait_seconds Time from a client's hello to its first assignment.",
      "# TYPE cascade_assign_wait_seconds histogram",
      'cascade_assign_wait_seconds_bucket{image="sample",le="0.1"} 2',
      'cascade_assign_wait_seconds_bucket{image="sample",le="0.5"} 2',
      'cascade_assign_wait_seconds_bucket{image="sample",le="1"} 2',
      'cascade_assign_wait_seconds_bucket{image="sample",le="2"} 2',
      'cascade_assign_wait_seconds_bucket{image="sample",le="5"} 2',
      'cascade_assign_wait_seconds_bucket{image="sample",le="10"} 5',
      'cascade_assign_wait_seconds_bucket{image="sample",le="30"} 5',
      'cascade_assign_wait_seconds_bucket{image="sample",le="60"} 6',
      'cascade_assign_wait_seconds_bucket{image="sample",le="120"} 6',
      'cascade_assign_wait_seconds_bucket{image="sample",le="300"} 6',
      'cascade_assign_wait_seconds_bucket{image="sample",le="600"} 6',
      'cascade_assign_wait_seconds_bucket{image="sample",le="+Inf"} 6',
      'cascade_assign_wait_seconds_sum{image="sample"} 61',
      'cascade_assign_wait_seconds_count{image="sample"} 6',
      "# HELP cascade_paused 1 while assignments are paused.",
      "# TYPE cascade_paused gauge",
      'cascade_paused{image="sample"} 0',
      "# HELP cascade_draining 1 while no new clients are admitted.",
      "# TYPE cascade_draining gauge",
      'cascade_draining{image="sample"} 0',
      "# HELP cascade_run_ended 1 once the run has ended.",
      "# TYPE cascade_run_ended gauge",
      'cascade_run_ended{image="sample"} 0',
      "# HELP cascade_run_seconds Seconds since the master started.",
      "# TYPE cascade_run_seconds gauge",
      'cascade_run_seconds{image="sample"} 42',
      "# HELP cascade_image_bytes Size of the image being deployed (id: its image id).",
      "# TYPE cascade_image_bytes gauge",
      'cascade_image_bytes{image="sample",id="abababababababababababababababababababababababababababababababab"} 67108864',
      "",
    ].join("\n"),
  );
});

Deno.test("metrics: join-to-assignment counts only a client's first assignment per hello", () => {
  const c = countersOf([
    { at: 10, event: "join", fields: { peer: "a", role: "client", complete: false } },
    { at: 10, event: "join", fields: { peer: "s", role: "server", complete: true } },
    { at: 12.5, event: "assign", fields: { server: "s", clients: "a", partial: true } },
    // A requeue and a second assignment are not a new wait from joining.
    { at: 20, event: "requeued", fields: { peer: "a", reason: "timeout" } },
    { at: 21, event: "assign", fields: { server: "s", clients: "a", partial: true } },
    // b joins and leaves unassigned: nothing observed.
    { at: 22, event: "join", fields: { peer: "b", role: "client", complete: false } },
    { at: 23, event: "leave", fields: { peer: "b", was: "waiting" } },
    { at: 24, event: "assign", fields: { server: "s", clients: "b", partial: true } },
  ]);
  assert.equal(c.waitCount, 1);
  assert.equal(c.waitSum, 2.5);
  assert.deepEqual(c.waitBuckets, [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
});

Deno.test("metrics: failure reasons from clients are escaped as label values", () => {
  const h = sampleRun();
  const c = countersOf([
    { at: 1, event: "client-failed", fields: { peer: "a", reason: 'say "hi"\\now' } },
    { at: 2, event: "verify-failed", fields: { peer: "a", bad: 3 } },
  ]);
  const text = renderMetrics([{
    name: "sample",
    status: liveStatus(h.core, SAMPLE_MANIFEST, h.time.now),
    counters: c,
  }]);
  assert.match(
    text,
    /\ncascade_chunk_failures_total\{image="sample",reason="read-back"\} 1\ncascade_chunk_failures_total\{image="sample",reason="say \\"hi\\"\\\\now"\} 1\n/,
  );
});

Deno.test("metrics: several images: one HELP and TYPE per family, each run's series by image", () => {
  const a = sampleRun();
  const b = sampleRun({ expect: 3 });
  const run = (name: string, h: typeof a) => ({
    name,
    status: liveStatus(h.core, SAMPLE_MANIFEST, h.time.now),
    counters: countersOf(h.core.events),
  });
  const text = renderMetrics([run("games", a), run("office", b)]);
  const lines = text.split("\n");
  assert.equal(lines.filter((l) => l === "# TYPE cascade_clients_expected gauge").length, 1);
  const expected = lines.indexOf("# TYPE cascade_clients_expected gauge");
  assert.deepEqual(lines.slice(expected + 1, expected + 3), [
    'cascade_clients_expected{image="games"} 8',
    'cascade_clients_expected{image="office"} 3',
  ]);
  assert.ok(lines.includes('cascade_peers{image="office",role="client",state="receiving"} 3'));
  assert.ok(lines.includes('cascade_assign_wait_seconds_count{image="games"} 6'));
  assert.ok(lines.includes('cascade_assign_wait_seconds_bucket{image="office",le="+Inf"} 6'));
  // Every series names its image: none without.
  for (const l of lines.filter((l) => l.startsWith("cascade_"))) {
    assert.match(l, /^cascade_[a-z_]+\{image="(games|office)"/);
  }
});

Deno.test("renderPortMetrics: descriptors held, the cap, refusals by which cap was full", () => {
  assert.equal(
    renderPortMetrics({ held: 9, cap: 192, refused: { address: 3, total: 0 } }),
    [
      "# HELP cascade_port_descriptors Descriptors the master's connections hold.",
      "# TYPE cascade_port_descriptors gauge",
      "cascade_port_descriptors 9",
      "# HELP cascade_port_descriptors_cap Descriptors its connections may hold (below its limit).",
      "# TYPE cascade_port_descriptors_cap gauge",
      "cascade_port_descriptors_cap 192",
      "# HELP cascade_connections_refused_total Connections closed at once, by the cap that was full.",
      "# TYPE cascade_connections_refused_total counter",
      'cascade_connections_refused_total{reason="address"} 3',
      'cascade_connections_refused_total{reason="total"} 0',
      "",
    ].join("\n"),
  );
});
