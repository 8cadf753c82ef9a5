// Signing in from the page, through app.request: the cookie's flags, the CSRF token, expiry,
// sign-out, and every refusal (wrong credential, expired session, missing CSRF token).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { MasterConfig } from "./core.ts";
import type { MasterAppOptions } from "./app.ts";
import { SESSION_SECONDS } from "./admin_session.ts";
import { openHistory } from "./history.ts";
import { coreHarness, harnessApp, playSample } from "./testkit.ts";

const TOKEN = "s3cret";

function setup(
  config: Partial<MasterConfig> = { token: TOKEN },
  options: Partial<MasterAppOptions> = {},
) {
  const h = coreHarness({ expect: 8, ...config });
  const app = harnessApp(h, options);
  playSample(h);
  return { h, app };
}

function signIn(body: unknown, headers: Record<string, string> = {}) {
  return new Request("http://master/api/v1/session", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function signedIn(app: ReturnType<typeof setup>["app"], who = "alice") {
  const res = await app.request(signIn({ token: TOKEN, who }));
  assert.equal(res.status, 200);
  const cookie = res.headers.get("set-cookie")!;
  const body = await res.json();
  return { res, body, cookie: cookie.split(";")[0] };
}

function act(action: string, headers: Record<string, string>, body = "") {
  return new Request(`http://master/api/v1/admin/${action}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

Deno.test("session: sign-in sets an HttpOnly, SameSite=Strict cookie and hands out a CSRF token", async () => {
  const { app } = setup();
  const { res, body, cookie } = await signedIn(app);
  const set = res.headers.get("set-cookie")!;
  assert.match(
    set,
    /^cascade_admin=[A-Za-z0-9_-]{32}; Max-Age=28800; Path=\/; HttpOnly; SameSite=Strict$/,
  );
  assert.deepEqual(Object.keys(body).sort(), ["csrf", "expiresIn", "signedIn", "who"]);
  assert.equal(body.who, "alice@unknown");
  assert.equal(body.expiresIn, SESSION_SECONDS);
  assert.ok(!JSON.stringify(body).includes(TOKEN), "the credential is never echoed");
  assert.equal(res.headers.get("cache-control"), "no-store");
  // The page asks who is signed in: the cookie says so, and it gets its CSRF token again.
  const me = await app.request("/api/v1/session", { headers: { cookie } });
  assert.deepEqual(await me.json(), { ...body, signedIn: true });
  const anon = await app.request("/api/v1/session");
  assert.deepEqual(await anon.json(), { signedIn: false });
});

Deno.test("session: a signed-in page acts with its CSRF token; the run's events say who", async () => {
  const { app, h } = setup();
  const { body, cookie } = await signedIn(app, "Mrs Smith");
  const res = await app.request(act("pause", { cookie, "x-csrf-token": body.csrf }));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { paused: true, draining: false, ended: null });
  const e = h.core.events.at(-1)!;
  assert.deepEqual([e.event, e.fields, e.at], [
    "admin",
    { action: "pause", by: "Mrs Smith@unknown" },
    h.time.now,
  ]);
  const end = await app.request(
    act("end", { cookie, "x-csrf-token": body.csrf }, '{"reason":"lesson over"}'),
  );
  assert.equal(end.status, 200);
  assert.equal(h.core.ended, "lesson over");
  assert.deepEqual(h.core.events.at(-2)?.fields, {
    action: "end",
    by: "Mrs Smith@unknown",
    reason: "lesson over",
  });
});

Deno.test("session: refused without the CSRF token, with a wrong one, or without a session", async () => {
  const { app, h } = setup();
  const { cookie } = await signedIn(app);
  const tries: Record<string, string>[] = [{ cookie }, { cookie, "x-csrf-token": "guess" }];
  for (const headers of tries) {
    const res = await app.request(act("pause", headers));
    assert.equal(res.status, 403);
    assert.deepEqual(await res.json(), {
      error: 'Missing or wrong CSRF token ("x-csrf-token")',
    });
  }
  const none = await app.request(act("pause", { cookie: "cascade_admin=made-up" }));
  assert.equal(none.status, 401);
  assert.equal(h.core.scheduler.snapshot().paused, false, "nothing happened");
});

Deno.test("session: a wrong admin token is refused; so is a master without one", async () => {
  const { app } = setup();
  const wrong = await app.request(signIn({ token: "guess", who: "mallory" }));
  assert.equal(wrong.status, 403);
  assert.deepEqual(await wrong.json(), { error: "Wrong admin token" });
  assert.equal(wrong.headers.get("set-cookie"), null);
  const bad = await app.request(signIn("token=s3cret"));
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /^Invalid sign-in: expected JSON/);
  const name = await app.request(signIn({ token: TOKEN, who: "<script>" }));
  assert.equal(name.status, 400);
  const off = setup({}).app;
  const res = await off.request(signIn({ token: TOKEN }));
  assert.equal(res.status, 403);
  assert.match((await res.json()).error, /^Admin actions are off/);
});

Deno.test("session: an expired session is refused and must sign in again", async () => {
  const { app, h } = setup();
  const { body, cookie } = await signedIn(app);
  h.advance(SESSION_SECONDS);
  const res = await app.request(act("pause", { cookie, "x-csrf-token": body.csrf }));
  assert.equal(res.status, 401);
  assert.deepEqual(await res.json(), { error: "Admin session expired: sign in again" });
  assert.deepEqual(
    await (await app.request("/api/v1/session", { headers: { cookie } })).json(),
    { signedIn: false },
  );
});

Deno.test("session: a cross-site form cannot sign in; sign-out ends the session", async () => {
  const { app } = setup();
  const form = await app.request(
    signIn('{"token":"s3cret"}', {
      "content-type": "text/plain",
      origin: "http://evil.example",
    }),
  );
  assert.equal(form.status, 403);
  const { body, cookie } = await signedIn(app);
  // What a browser sends from the page itself: Sec-Fetch-Site same-origin (Hono's csrf checks).
  const site = { "sec-fetch-site": "same-origin" };
  const noCsrf = await app.request("/api/v1/session", {
    method: "DELETE",
    headers: { cookie, ...site },
  });
  assert.equal(noCsrf.status, 403);
  const out = await app.request("/api/v1/session", {
    method: "DELETE",
    headers: { cookie, "x-csrf-token": body.csrf, ...site },
  });
  assert.equal(out.status, 200);
  assert.match(out.headers.get("set-cookie")!, /^cascade_admin=; Max-Age=0; Path=\//);
  const after = await app.request(act("pause", { cookie, "x-csrf-token": body.csrf }));
  assert.equal(after.status, 401);
});

Deno.test("admin actions land in the history with who, which sign-in and when; the page reads them back", async () => {
  const dir = await Deno.makeTempDir();
  const history = openHistory(`${dir}/h.sqlite`);
  try {
    const { app } = setup({ token: TOKEN }, {
      recordAdmin: (r) => history.addAdminAction({ ...r, at: 1_700_000_000_000 }),
      adminLog: () => history.adminActions(),
    });
    const ann = await signedIn(app, "ann");
    const paused = await app.request(
      act("pause", { cookie: ann.cookie, "x-csrf-token": ann.body.csrf }),
    );
    assert.equal(paused.status, 200);
    const bob = await signedIn(app, "bob");
    await app.request(
      act("end", { cookie: bob.cookie, "x-csrf-token": bob.body.csrf }, '{"reason":"lesson"}'),
    );
    // A refused action is not an action: nothing is kept.
    await app.request(act("resume", { cookie: ann.cookie }));
    await app.request(act("drain", { authorization: "Bearer wrong" }));
    const tagOf = (id: string) =>
      `session:${createHash("sha256").update(id.split("=")[1]).digest("hex").slice(0, 12)}`;
    const kept = history.adminActions();
    assert.deepEqual(kept, [
      {
        at: 1_700_000_000_000,
        by: "bob@unknown",
        session: tagOf(bob.cookie),
        action: "end",
        image: null,
        detail: '{"reason":"lesson"}',
      },
      {
        at: 1_700_000_000_000,
        by: "ann@unknown",
        session: tagOf(ann.cookie),
        action: "pause",
        image: null,
        detail: "{}",
      },
    ]);
    assert.ok(!JSON.stringify(kept).includes(ann.cookie.split("=")[1]), "no live cookie kept");
    const log = await app.request("/api/v1/admin/log");
    assert.deepEqual(await log.json(), { kept: true, actions: kept });
  } finally {
    history.close();
    await Deno.remove(dir, { recursive: true });
  }
});
