// Admin in the browser: sign in with the admin token once, then act from the page. The
// session lives in a cookie the page's script cannot read (HttpOnly, SameSite=Strict, Path=/);
// every change also needs the session's CSRF token in an "x-csrf-token" header, which another
// site can neither read nor send. The credential is only ever in a POST body, never in a URL.
// Sessions are in memory (a master restart signs everyone out), bounded, and expire.
//
// Routes: POST /api/v1/session {"token": "…", "who": "…"} signs in; GET /api/v1/session says
// who is signed in (and hands the page its CSRF token); DELETE /api/v1/session signs out.
import { createHash, randomBytes } from "node:crypto";
import type { Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { csrf } from "hono/csrf";
import type { Logger } from "../../imagetools/kit/mod.ts";
import { sameSecret } from "./core.ts";

export const SESSION_COOKIE = "cascade_admin";
/** Sessions last 8 hours (a school day); at most this many at once (the oldest goes first). */
export const SESSION_SECONDS = 8 * 3600;
export const MAX_SESSIONS = 32;

export interface AdminSession {
  id: string;
  csrf: string;
  who: string;
  /** Clock seconds (the injected clock) when it expires. */
  expiresAt: number;
}

/** Signed-in admins, by session id. The clock is injected (seconds), as everywhere in the core. */
export class AdminSessions {
  #byId = new Map<string, AdminSession>();
  #now: () => number;
  readonly ttl: number;

  constructor(now: () => number, ttl = SESSION_SECONDS) {
    this.#now = now;
    this.ttl = ttl;
  }

  create(who: string): AdminSession {
    const s: AdminSession = {
      id: randomBytes(24).toString("base64url"),
      csrf: randomBytes(24).toString("base64url"),
      who,
      expiresAt: this.#now() + this.ttl,
    };
    this.#byId.set(s.id, s);
    while (this.#byId.size > MAX_SESSIONS) this.#byId.delete(this.#byId.keys().next().value!);
    return s;
  }

  /** The live session with this id; "expired" for one that timed out (it is forgotten). */
  get(id: string | undefined): AdminSession | "expired" | null {
    const s = id ? this.#byId.get(id) : undefined;
    if (!s) return null;
    if (this.#now() >= s.expiresAt) {
      this.#byId.delete(s.id);
      return "expired";
    }
    return s;
  }

  delete(id: string) {
    this.#byId.delete(id);
  }
}

/** Why an admin request may not act, or null when its bearer token is the admin token. */
export function adminDenied(
  token: string | undefined,
  authorization: string | undefined,
): { status: 401 | 403; message: string } | null {
  if (token === undefined) {
    return {
      status: 403,
      message: "Admin actions are off: start the master with --token T (or CASCADE_TOKEN)",
    };
  }
  const m = /^Bearer (.+)$/.exec(authorization ?? "");
  if (!m) {
    return { status: 401, message: 'Admin actions need "Authorization: Bearer <admin token>"' };
  }
  if (!sameSecret(m[1], token)) return { status: 403, message: "Wrong admin token" };
  return null;
}

export type AdminCheck =
  | { ok: true; who: string; session: string }
  | { ok: false; status: 401 | 403; message: string };

/**
 * Who may act: a request with the admin credential as a bearer token, or one with a live
 * session cookie and that session's CSRF token in "x-csrf-token".
 */
export function checkAdmin(
  c: Context,
  sessions: AdminSessions,
  token: string | undefined,
): AdminCheck {
  if (token === undefined) return { ok: false, ...adminDenied(token, undefined)! };
  const auth = c.req.header("authorization");
  if (auth !== undefined) {
    const denied = adminDenied(token, auth);
    return denied
      ? { ok: false, ...denied }
      : { ok: true, who: `token@${address(c)}`, session: "token" };
  }
  const s = sessions.get(getCookie(c, SESSION_COOKIE));
  if (s === "expired") {
    return { ok: false, status: 401, message: "Admin session expired: sign in again" };
  }
  if (!s) {
    return {
      ok: false,
      status: 401,
      message: 'Admin actions need "Authorization: Bearer <admin token>"',
    };
  }
  const sent = c.req.header("x-csrf-token");
  if (!sent || !sameSecret(sent, s.csrf)) {
    return { ok: false, status: 403, message: 'Missing or wrong CSRF token ("x-csrf-token")' };
  }
  return { ok: true, who: s.who, session: sessionTag(s) };
}

/** A sign-in's name in the history: a digest of its id, so the history holds no live cookie. */
export function sessionTag(s: AdminSession): string {
  return `session:${createHash("sha256").update(s.id).digest("hex").slice(0, 12)}`;
}

function address(c: Context): string {
  const addr = (c.env as Deno.ServeHandlerInfo | undefined)?.remoteAddr as
    | Deno.NetAddr
    | undefined;
  return addr?.hostname ?? "unknown";
}

export interface SessionRouteOptions {
  sessions: AdminSessions;
  token: string | undefined;
  log: Logger;
  /** Seconds on the sessions' clock (to say how long a session has left). */
  now: () => number;
}

export function sessionRoutes(
  app: Hono<{ Bindings: Deno.ServeHandlerInfo }>,
  o: SessionRouteOptions,
) {
  const { sessions } = o;
  // Hono's csrf middleware refuses a cross-site form post (the one kind of request another
  // site can make the browser send here without asking); the JSON the page sends passes.
  app.use("/api/v1/session", csrf());
  const secure = (c: Context) => new URL(c.req.url).protocol === "https:";
  const view = (s: AdminSession) => ({
    signedIn: true,
    who: s.who,
    csrf: s.csrf,
    expiresIn: Math.max(0, Math.round(s.expiresAt - o.now())),
  });

  app.get("/api/v1/session", (c) => {
    const s = sessions.get(getCookie(c, SESSION_COOKIE));
    c.header("cache-control", "no-store");
    return c.json(s && s !== "expired" ? view(s) : { signedIn: false });
  });

  app.post("/api/v1/session", async (c) => {
    if (o.token === undefined) {
      return c.json({
        error: "Admin actions are off: start the master with --token T (or CASCADE_TOKEN)",
      }, 403);
    }
    let body: { token?: unknown; who?: unknown };
    try {
      const text = await c.req.text();
      if (text.length > 4096) throw new RangeError(`${text.length} bytes`);
      body = JSON.parse(text);
      if (typeof body !== "object" || body === null) throw new TypeError("not an object");
    } catch (err) {
      return c.json({
        error: `Invalid sign-in: expected JSON {"token": "…", "who": "…"} (${
          (err as Error).message
        })`,
      }, 400);
    }
    const who = typeof body.who === "string" && body.who.trim() ? body.who.trim() : "admin";
    if (who.length > 40 || !/^[\p{L}\p{N} ._@-]+$/u.test(who)) {
      return c.json({ error: `Invalid sign-in: "who" ${JSON.stringify(who)} is not a name` }, 400);
    }
    if (typeof body.token !== "string" || !sameSecret(body.token, o.token)) {
      o.log("admin-sign-in-refused", { who, address: address(c) });
      return c.json({ error: "Wrong admin token" }, 403);
    }
    const s = sessions.create(`${who}@${address(c)}`);
    setCookie(c, SESSION_COOKIE, s.id, {
      httpOnly: true,
      sameSite: "Strict",
      path: "/",
      maxAge: sessions.ttl,
      secure: secure(c),
    });
    o.log("admin-sign-in", { who: s.who });
    c.header("cache-control", "no-store");
    return c.json(view(s));
  });

  app.delete("/api/v1/session", (c) => {
    const check = checkAdmin(c, sessions, o.token);
    if (!check.ok) return c.json({ error: check.message }, check.status);
    const id = getCookie(c, SESSION_COOKIE);
    if (id) sessions.delete(id);
    deleteCookie(c, SESSION_COOKIE, { path: "/" });
    o.log("admin-sign-out", { who: check.who });
    return c.json({ signedIn: false });
  });
}
