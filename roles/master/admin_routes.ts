// POST /api/v1/admin/:action: pause, resume, drain, end (one image's run with "image", else
// every run), re-image a PC or a group at its next netboot, enrol new PCs for N minutes. Who
// may act is admin_session.ts's call; every action taken is noted in the run's events and
// handed to `record` (the history) with who took it, from which session, and when.
import type { Hono } from "hono";
import { normalizeMac } from "../../netboot/mod.ts";
import { type AdminSessions, checkAdmin } from "./admin_session.ts";
import type { ImageRun, Site } from "./site.ts";

export const ADMIN_ACTIONS = ["pause", "resume", "drain", "end", "reimage", "enrol"] as const;
export type AdminAction = typeof ADMIN_ACTIONS[number];

export interface AdminBody {
  reason?: string;
  mac?: string;
  /** reimage: every PC of this group; enrol: the group new PCs join. */
  group?: string;
  minutes?: number;
  /** pause, resume, drain, end: only this image's run (its name or id). */
  image?: string;
}

/** What is re-imaged: one PC, every PC ("all"), or every PC of a group. */
export type ReimageTarget = { mac: string } | { group: string };

/** One admin action as the history keeps it. */
export interface AdminRecord {
  action: AdminAction;
  /** Who: the name given at sign-in and the address ("ann@10.0.0.9"), or token@address. */
  by: string;
  /** Which sign-in: a short tag of the session ("token" for a bearer token). */
  session: string;
  /** The image's run it touched (null: every run, or none). */
  image: string | null;
  /** The request's fields and the outcome, as JSON. */
  detail: string;
}

export interface AdminRouteOptions {
  site: Site;
  sessions: AdminSessions;
  token: string | undefined;
  /** Forget that PCs were imaged, so netboot images them again; returns how many. */
  reimage?: (target: ReimageTarget) => number;
  /** Enrol every PC that network-boots in the next `minutes` (into `group`); returns seconds. */
  enrol?: (minutes: number, group?: string) => number;
  /** Keep the action (the run history); a failure to keep it must not undo it. */
  record?: (r: AdminRecord) => void;
}

const FIELDS: Record<AdminAction, string[]> = {
  pause: ["image"],
  resume: ["image"],
  drain: ["image"],
  end: ["reason", "image"],
  reimage: ["mac", "group"],
  enrol: ["minutes", "group"],
};

/** An admin request's body: empty, or a JSON object with the action's fields. */
export function parseAdminBody(action: AdminAction, text: string): AdminBody {
  if (text.trim() === "") {
    if (action === "reimage") {
      throw new TypeError('Missing field "mac" (a MAC, or "all") or "group"');
    }
    if (action === "enrol") throw new TypeError('Missing field "minutes" (1 to 1440)');
    return {};
  }
  if (text.length > 4096) throw new RangeError(`Body of ${text.length} bytes is over 4096 bytes`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new SyntaxError(`Body is not JSON: ${JSON.stringify(text.slice(0, 40))}`, {
      cause: err,
    });
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new TypeError("Body must be a JSON object");
  }
  for (const [k, value] of Object.entries(v)) {
    if (!FIELDS[action].includes(k)) throw new TypeError(`Unknown field "${k}" for "${action}"`);
    if (k === "minutes") {
      if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 1440) {
        throw new TypeError(`Field "minutes" (${JSON.stringify(value)}) must be 1 to 1440`);
      }
      continue;
    }
    if (typeof value !== "string" || value.length < 1 || value.length > 200) {
      throw new TypeError(`Field "${k}" must be a string of 1..200 characters`);
    }
  }
  const body = v as AdminBody;
  if (action === "enrol" && body.minutes === undefined) {
    throw new TypeError('Missing field "minutes" (1 to 1440)');
  }
  if (action === "reimage") {
    if (body.mac !== undefined && body.group !== undefined) {
      throw new TypeError('Give "mac" or "group", not both');
    }
    if (body.group !== undefined) return body;
    const mac = body.mac === "all" ? "all" : normalizeMac(body.mac ?? "");
    if (!mac) {
      throw new TypeError(
        `Field "mac" (${JSON.stringify(body.mac) ?? "missing"}) must be a MAC or "all"`,
      );
    }
    body.mac = mac;
  }
  return body;
}

type App = Hono<{ Bindings: Deno.ServeHandlerInfo }>;

export function adminRoutes(app: App, o: AdminRouteOptions) {
  const { site } = o;
  app.post("/api/v1/admin/:action", async (c) => {
    const action = c.req.param("action") as AdminAction;
    if (!ADMIN_ACTIONS.includes(action)) {
      return c.json(
        { error: `No admin action "${action}": expected ${ADMIN_ACTIONS.join(", ")}` },
        404,
      );
    }
    // The admin token as a bearer token (curl), or a signed-in page's session and CSRF token.
    const check = checkAdmin(c, o.sessions, o.token);
    if (!check.ok) {
      if (check.status === 401) c.header("WWW-Authenticate", 'Bearer realm="cascade"');
      return c.json({ error: check.message }, check.status);
    }
    const by = check.who;
    let body: AdminBody;
    try {
      body = parseAdminBody(action, await c.req.text());
    } catch (err) {
      return c.json({ error: `Invalid "${action}" request: ${(err as Error).message}` }, 400);
    }
    const keep = (image: string | null, outcome: Record<string, unknown>) => {
      try {
        o.record?.({
          action,
          by,
          session: check.session,
          image,
          detail: JSON.stringify({ ...body, ...outcome }),
        });
      } catch { /* the history logs its own failures; the action stands */ }
    };
    if (action === "reimage") {
      // Not tied to a run: it changes what PCs boot next time, even between runs.
      if (!o.reimage) {
        return c.json(
          { error: "Re-imaging needs the run history: start without --no-history" },
          409,
        );
      }
      let forgotten: number;
      try {
        forgotten = o.reimage(
          body.group !== undefined ? { group: body.group } : { mac: body.mac! },
        );
      } catch (err) {
        return c.json({ error: `Invalid "reimage" request: ${(err as Error).message}` }, 400);
      }
      const target = body.group !== undefined ? { group: body.group } : { mac: body.mac };
      site.main.core.note("admin", { action, by, ...target, forgotten });
      keep(null, { forgotten });
      return c.json({ ...target, forgotten });
    }
    if (action === "enrol") {
      if (!o.enrol) {
        return c.json({ error: "Enrolment needs the boot files: start with --netboot DIR" }, 409);
      }
      let seconds: number;
      try {
        seconds = o.enrol(body.minutes!, body.group);
      } catch (err) {
        return c.json({ error: `Invalid "enrol" request: ${(err as Error).message}` }, 400);
      }
      site.main.core.note("admin", { action, by, minutes: body.minutes, group: body.group });
      keep(null, { seconds: Math.round(seconds) });
      return c.json({ enrolling: true, seconds: Math.round(seconds), group: body.group ?? null });
    }
    let runs: readonly ImageRun[] = site.runs;
    if (body.image !== undefined) {
      const run = site.find(body.image);
      if (!run) {
        return c.json({
          error:
            `Invalid "${action}" request: no image "${body.image}" (this master serves ${site.describe()})`,
        }, 404);
      }
      runs = [run];
    }
    const open = runs.filter((r) => !r.core.ended);
    if (open.length === 0) {
      return c.json({ error: `The run has ended: ${runs[0].core.ended}` }, 409);
    }
    for (const { core } of open) {
      const paused = core.scheduler.snapshot().paused;
      switch (action) {
        case "pause":
          if (!paused) core.pause(true);
          break;
        case "resume":
          if (paused) core.pause(false);
          if (core.draining) core.drain(false);
          break;
        case "drain":
          if (!core.draining) core.drain(true);
          break;
        case "end":
          // Noted before the end, so the run's last events say who ended it.
          core.note("admin", { action, by, reason: body.reason });
          core.end(body.reason ?? "ended by an admin");
          break;
      }
      if (action !== "end") core.note("admin", { action, by });
    }
    const state = (r: ImageRun) => ({
      paused: r.core.scheduler.snapshot().paused,
      draining: r.core.draining,
      ended: r.core.ended,
    });
    keep(runs.length === 1 && site.runs.length > 1 ? runs[0].name : null, {});
    return c.json({
      ...state(open[0]),
      ...(site.runs.length > 1 ? { runs: open.map((r) => ({ image: r.name, ...state(r) })) } : {}),
    });
  });
}
