// The master's routes through app.request: no sockets, a core driven by hand.
import assert from "node:assert/strict";
import type { MasterConfig } from "./core.ts";
import { adminDenied, createMasterApp, parseAdminBody } from "./app.ts";
import type { LiveStatus } from "./live_status.ts";
import { coreHarness, playSample, SAMPLE_MANIFEST, sseReader } from "./testkit.ts";

const TOKEN = "s3cret";

function setup(config: Partial<MasterConfig> = {}) {
  const h = coreHarness({ expect: 8, ...config });
  const logs: string[] = [];
  const app = createMasterApp({
    core: h.core,
    manifest: SAMPLE_MANIFEST,
    manifestBytes: new TextEncoder().encode('{"format":1}'),
    log: (event, fields) => logs.push(`${event} ${JSON.stringify(fields ?? {})}`),
    now: () => h.time.now,
    sse: { minGap: 5, period: 40 },
  });
  playSample(h);
  return { h, app, logs };
}

function admin(action: string, opts: { token?: string; body?: string } = {}) {
  return new Request(`http://master/api/v1/admin/${action}`, {
    method: "POST",
    headers: opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {},
    body: opts.body,
  });
}

Deno.test("GET / is the dashboard, self-contained under a strict content policy", async () => {
  const { app } = setup();
  const res = await app.request("/");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/html; charset=UTF-8");
  assert.equal(
    res.headers.get("content-security-policy"),
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; " +
      "connect-src 'self'; img-src 'self' data:",
  );
  const html = await res.text();
  assert.match(html, /<title>Cascade: 1\/8 imaged<\/title>/);
  const snap = JSON.parse(
    /<script type="application\/json" id="snap">(.*?)<\/script>/.exec(html)![1],
  );
  assert.equal(snap.peers["pc-07"].s, "failed");
});

Deno.test("GET /api/v1/status: the live status with admin state, ETA and recent events", async () => {
  const { app } = setup();
  const res = await app.request("/api/v1/status");
  assert.equal(res.status, 200);
  const s = await res.json() as LiveStatus;
  assert.equal(s.imageId, "ab".repeat(32));
  assert.deepEqual([s.paused, s.draining, s.expect, s.ended, s.eta], [false, false, 8, null, 22]);
  assert.deepEqual(s.totals, {
    clients: 7,
    booting: 1,
    verified: 1,
    receiving: 3,
    waiting: 1,
    failed: 1,
    servers: 2,
    bytesReceived: 215 * 1024 * 1024,
  });
  assert.deepEqual(s.peers.map((p) => [p.id, p.state, p.served]), [
    ["fake-server", "serving", 128 * 1024 * 1024],
    ["pc-01", "serving", 87 * 1024 * 1024],
    ["pc-02", "verifying", 0],
    ["pc-03", "receiving", 0],
    ["pc-04", "receiving", 0],
    ["pc-05", "receiving", 0],
    ["pc-07", "left", 0],
    ["pc-06", "waiting", 0],
    ["52:54:00:00:01:09", "booting", 0],
  ]);
  assert.equal(s.recent.length, 12);
  assert.deepEqual(s.recent.at(-1), {
    at: 1041,
    event: "booting",
    fields: { peer: "52:54:00:00:01:09", address: "10.0.1.9" },
  });
});

Deno.test("GET /api/v1/peers/:id: one PC with its failures and events; unknown is 404", async () => {
  const { app } = setup();
  const res = await app.request("/api/v1/peers/pc-07");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.peer.state, "left");
  assert.deepEqual(body.peer.failures, [{
    at: 1036,
    reason: "bad-chunk",
    detail: 'Chunk 12 failed its SHA-256 check from "fake-server"',
    server: "fake-server",
  }]);
  assert.deepEqual(body.events.map((e: { event: string }) => e.event), [
    "join",
    "assign",
    "client-failed",
    "requeued",
    "leave", // within its backoff (2 s) with the fake server, its only server
  ]);
  const booting = await app.request(`/api/v1/peers/${encodeURIComponent("52:54:00:00:01:09")}`);
  assert.equal((await booting.json()).peer.state, "booting");
  const missing = await app.request("/api/v1/peers/pc-99");
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), { error: 'No peer "pc-99" in this run' });
});

Deno.test("GET /metrics: Prometheus text, counters fed by the core's events", async () => {
  const { app } = setup();
  const res = await app.request("/metrics");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  assert.ok(text.startsWith("# HELP cascade_peers Peers by state and role.\n"));
  assert.match(text, /\ncascade_chunk_failures_total\{image="[^"]+",reason="bad-chunk"\} 1\n/);
  assert.match(text, /\ncascade_assign_wait_seconds_count\{image="[^"]+"\} 6\n/);
  assert.match(text, /\ncascade_queue_length\{image="[^"]+",queue="clients"\} 1\n/);
});

Deno.test("GET /api/v1/events: a snapshot at once, another after an event, then the end", async () => {
  const { app, h } = setup();
  const res = await app.request("/api/v1/events");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const ev = sseReader(res);
  const first = await ev.next();
  assert.equal(first?.event, "status");
  assert.match(first?.id ?? "", /^[a-z0-9]+\.1$/);
  assert.equal((JSON.parse(first!.data) as LiveStatus).peers.length, 9);
  h.hello("pc-08", "client");
  let next = await ev.next();
  while (!JSON.parse(next!.data).peers.some((p: { id: string }) => p.id === "pc-08")) {
    next = await ev.next();
  }
  h.core.end("stopped for the test");
  for (;;) {
    const e = await ev.next();
    assert.ok(e, "the stream sends the end before it closes");
    if (e.event === "end") {
      assert.deepEqual(JSON.parse(e.data), { reason: "stopped for the test" });
      break;
    }
    assert.equal(e.event, "status");
  }
  assert.equal(await ev.next(), null, "and then it closes: it never holds up a shutdown");
});

Deno.test("GET /api/v1/events?view=…: the rendered view is gone (the page reads the feed)", async () => {
  const { app } = setup();
  const bad = await app.request("/api/v1/events?view=dashboard");
  assert.equal(bad.status, 400);
  assert.deepEqual(await bad.json(), {
    error: 'Unknown view "dashboard": the page now reads /api/v1/feed/events',
  });
});

Deno.test("GET /api/v1/events: a client that goes away ends its stream", async () => {
  const { app } = setup();
  const ev = sseReader(await app.request("/api/v1/events"));
  assert.equal((await ev.next())?.event, "status");
  await ev.cancel();
  // Nothing to assert beyond the test's own sanitizers: no timer or stream may be left over.
  await new Promise((r) => setTimeout(r, 60));
});

Deno.test("admin: without an admin token on the master every action is refused (403)", async () => {
  const { app, h } = setup();
  for (const action of ["pause", "resume", "drain", "end"]) {
    const res = await app.request(admin(action, { token: "anything" }));
    assert.equal(res.status, 403, action);
    assert.deepEqual(await res.json(), {
      error: "Admin actions are off: start the master with --token T (or CASCADE_TOKEN)",
    });
  }
  assert.equal(h.core.ended, null);
});

Deno.test("admin: a missing token is 401, a wrong one 403, an unknown action 404", async () => {
  const { app } = setup({ token: TOKEN });
  const missing = await app.request(admin("pause"));
  assert.equal(missing.status, 401);
  assert.equal(missing.headers.get("www-authenticate"), 'Bearer realm="cascade"');
  assert.deepEqual(await missing.json(), {
    error: 'Admin actions need "Authorization: Bearer <admin token>"',
  });
  const wrong = await app.request(admin("pause", { token: "guess" }));
  assert.equal(wrong.status, 403);
  assert.deepEqual(await wrong.json(), { error: "Wrong admin token" });
  const unknown = await app.request(admin("reboot-all", { token: TOKEN }));
  assert.equal(unknown.status, 404);
  assert.deepEqual(await unknown.json(), {
    error: 'No admin action "reboot-all": expected pause, resume, drain, end, reimage, enrol',
  });
  const get = await app.request("/api/v1/admin/pause");
  assert.equal(get.status, 404);
});

Deno.test("admin: malformed or unexpected bodies are 400 and change nothing", async () => {
  const { app, h } = setup({ token: TOKEN });
  const cases: [string, string, string][] = [
    ["end", "{oops", 'Invalid "end" request: Body is not JSON: "{oops"'],
    ["end", "[1]", 'Invalid "end" request: Body must be a JSON object'],
    [
      "end",
      '{"reason":42}',
      'Invalid "end" request: Field "reason" must be a string of 1..200 characters',
    ],
    ["pause", '{"reason":"x"}', 'Invalid "pause" request: Unknown field "reason" for "pause"'],
  ];
  for (const [action, body, error] of cases) {
    const res = await app.request(admin(action, { token: TOKEN, body }));
    assert.equal(res.status, 400, body);
    assert.deepEqual(await res.json(), { error });
  }
  assert.equal(h.core.ended, null);
  assert.equal(h.core.scheduler.snapshot().paused, false);
});

Deno.test("admin: pause and resume assignments", async () => {
  const { app, h } = setup({ token: TOKEN });
  const res = await app.request(admin("pause", { token: TOKEN }));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { paused: true, draining: false, ended: null });
  // In the run's events, with who did it (a bearer token, from an unknown address here).
  assert.deepEqual(h.core.events.at(-1)?.event, "admin");
  assert.deepEqual(h.core.events.at(-1)?.fields, { action: "pause", by: "token@unknown" });
  // A paused master assigns nothing: pc-06 keeps waiting though pc-02 now serves.
  h.say("pc-02", { type: "verified", ok: true, bad: [], seconds: 1 });
  h.time.now += 100;
  h.core.tick();
  assert.equal(h.core.peers.get("pc-06")!.state, "waiting");
  assert.equal((await (await app.request("/api/v1/status")).json()).paused, true);
  const resumed = await app.request(admin("resume", { token: TOKEN, body: "{}" }));
  assert.deepEqual(await resumed.json(), { paused: false, draining: false, ended: null });
  assert.equal(h.core.peers.get("pc-06")!.state, "receiving");
});

Deno.test("admin: drain refuses new clients, lets known ones back; resume admits again", async () => {
  const { app, h } = setup({ token: TOKEN });
  const res = await app.request(admin("drain", { token: TOKEN }));
  assert.deepEqual(await res.json(), { paused: false, draining: true, ended: null });
  h.hello("pc-new", "client");
  assert.deepEqual(h.sent.filter((s) => s.to === "pc-new").map((s) => s.msg), [
    { type: "error", message: "This run is draining: the master admits no new clients" },
  ]);
  assert.equal(h.core.peers.has("pc-new"), false);
  // pc-06 reconnects (a network blip): it is part of this run, so it is welcome.
  h.drop("pc-06");
  h.open("pc-06b", "10.0.1.6");
  h.hello("pc-06b", "client", { name: "pc-06" });
  assert.equal(h.sent.filter((s) => s.to === "pc-06b")[0].msg.type, "welcome");
  // A server is always welcome: it only helps the PCs already in.
  h.hello("srv", "server");
  assert.equal(h.core.peers.get("srv")?.state, "serving");
  await app.request(admin("resume", { token: TOKEN }));
  h.hello("pc-late", "client");
  assert.equal(h.core.peers.get("pc-late")?.connected, true);
});

Deno.test("admin: end tells every peer; a second end is 409", async () => {
  const { app, h } = setup({ token: TOKEN });
  const res = await app.request(
    admin("end", { token: TOKEN, body: '{"reason":"lesson starts"}' }),
  );
  assert.deepEqual(await res.json(), { paused: false, draining: false, ended: "lesson starts" });
  assert.equal(h.core.ended, "lesson starts");
  for (const pc of ["fake-server", "pc-01", "pc-03", "pc-06"]) {
    assert.deepEqual(h.sent.filter((s) => s.to === pc).at(-1)?.msg, {
      type: "end",
      reason: "lesson starts",
    }, pc);
  }
  const again = await app.request(admin("end", { token: TOKEN }));
  assert.equal(again.status, 409);
  assert.deepEqual(await again.json(), { error: "The run has ended: lesson starts" });
});

Deno.test("other routes: control needs a WebSocket, image facts, JSON 404", async () => {
  const { app } = setup();
  const ctl = await app.request("/api/v1/control");
  assert.equal(ctl.status, 426);
  const image = await (await app.request("/api/v1/image")).json();
  assert.deepEqual([image.name, image.chunks, image.size], ["lab-2026.img", 64, 64 * 1024 * 1024]);
  const manifest = await app.request("/api/v1/manifest");
  assert.equal(await manifest.text(), '{"format":1}');
  const none = await app.request("/nope");
  assert.equal(none.status, 404);
  assert.deepEqual(await none.json(), { error: "No such route: GET /nope" });
});

Deno.test("adminDenied and parseAdminBody: the rules on their own", () => {
  assert.equal(adminDenied("t", "Bearer t"), null);
  assert.equal(adminDenied("t", "Basic dDp0")?.status, 401);
  assert.equal(adminDenied("t", "Bearer tt")?.status, 403);
  assert.equal(adminDenied(undefined, "Bearer t")?.status, 403);
  assert.deepEqual(parseAdminBody("end", "  "), {});
  assert.deepEqual(parseAdminBody("end", '{"reason":"r"}'), { reason: "r" });
  assert.throws(() => parseAdminBody("drain", "x".repeat(5000)), RangeError);
});

Deno.test("a booting PC shows as booting until its hello replaces it", async () => {
  const { app, h } = setup();
  const ids = async () =>
    ((await (await app.request("/api/v1/status")).json()) as LiveStatus).peers
      .filter((p) => p.mac === "52:54:00:00:01:09").map((p) => [p.id, p.state]);
  assert.deepEqual(await ids(), [["52:54:00:00:01:09", "booting"]]);
  h.open("pc-09", "10.0.1.9"); // from the address it booted from
  h.hello("pc-09", "client", { mac: "52:54:00:00:01:09" });
  assert.deepEqual(await ids(), [["pc-09", "receiving"]]);
  // Asking for its boot script again while connected (a stray request) changes nothing.
  h.core.booting("52:54:00:00:01:09", "10.0.1.9");
  assert.deepEqual(await ids(), [["pc-09", "receiving"]]);
});

Deno.test("admin enrol opens a window for new PCs; boots of strangers are listed in the status", async () => {
  const h = coreHarness({ expect: 8, token: TOKEN });
  const windows: [number, string | undefined][] = [];
  const app = createMasterApp({
    core: h.core,
    manifest: SAMPLE_MANIFEST,
    manifestBytes: new TextEncoder().encode('{"format":1}'),
    log: () => {},
    now: () => h.time.now,
    enrol: (minutes, group) => {
      if (group === "nope") throw new TypeError('Unknown group "nope": not in the groups file');
      windows.push([minutes, group]);
      return minutes * 60;
    },
  });
  const ok = await app.request(admin("enrol", { token: TOKEN, body: '{"minutes":15}' }));
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { enrolling: true, seconds: 900, group: null });
  const bad: [string, string][] = [
    ["", 'Invalid "enrol" request: Missing field "minutes" (1 to 1440)'],
    ['{"minutes":0}', 'Invalid "enrol" request: Field "minutes" (0) must be 1 to 1440'],
    ['{"group":"lab"}', 'Invalid "enrol" request: Missing field "minutes" (1 to 1440)'],
    [
      '{"minutes":5,"group":"nope"}',
      'Invalid "enrol" request: Unknown group "nope": not in the groups file',
    ],
  ];
  for (const [body, error] of bad) {
    const res = await app.request(admin("enrol", { token: TOKEN, body }));
    assert.equal(res.status, 400, body);
    assert.deepEqual(await res.json(), { error });
  }
  assert.deepEqual(windows, [[15, undefined]]);

  h.core.bootAnswered("52:54:00:00:00:77", "10.0.0.77", {
    action: "local",
    reason: "not-enrolled",
  });
  h.time.now += 5;
  h.core.bootAnswered("52:54:00:00:00:77", "10.0.0.78", {
    action: "local",
    reason: "not-enrolled",
  });
  h.core.bootAnswered("52:54:00:00:00:01", "10.0.0.1", { action: "local", reason: "imaged" });
  const status = await (await app.request("/api/v1/status")).json();
  assert.deepEqual(status.unenrolled, [{
    mac: "52:54:00:00:00:77",
    address: "10.0.0.78",
    firstAt: h.time.now - 5,
    lastAt: h.time.now,
    boots: 2,
  }]);
  assert.equal(status.peers.length, 0); // none of them is a PC of the run
});

Deno.test("GET /api/v1/peers/:id carries the PC's boot answers (the details panel)", async () => {
  const { app, h } = setup();
  const mac = "52:54:00:00:01:09";
  h.core.bootAnswered(mac, "10.0.1.9", { action: "local", reason: "imaged" });
  h.advance(5);
  h.core.bootAnswered(mac, "10.0.1.9", { action: "image", group: "lab" });
  const body = await (await app.request(`/api/v1/peers/${encodeURIComponent(mac)}`)).json();
  assert.deepEqual(body.boot, [
    { at: 1042, address: "10.0.1.9", answer: "local:imaged" },
    { at: 1047, address: "10.0.1.9", answer: "image", group: "lab" },
  ]);
  // A PC that never network-booted from this master has none.
  assert.deepEqual((await (await app.request("/api/v1/peers/pc-03")).json()).boot, []);
});
