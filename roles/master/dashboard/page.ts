// The live dashboard at "/": one self-contained page (inline CSS and script, nothing loaded from
// elsewhere) made to be read on a projector across a room. Pure: status in, HTML out.
//
// The master renders everything, here and in tree_svg.ts. The page's script only listens to
// /api/v1/events?view=dashboard, whose events carry the freshly rendered live part, and swaps
// it in: one renderer, tested in Deno, and a page that shows the run even without its script.
import { formatBytes, formatDuration, formatRate } from "../../../imagetools/kit/mod.ts";
import type { LivePeer, LiveStatus } from "../../protocol/mod.ts";
import type { EventRecord } from "../../protocol/mod.ts";
import { escapeHtml } from "./html.ts";
import { renderTreeSvg } from "./tree_svg.ts";

/** What the dashboard calls a peer's state: a client that left unimaged has failed. */
export function shownState(p: LivePeer): string {
  return p.role === "client" && p.state === "left" && !p.verified ? "failed" : p.state;
}

function roleRank(p: LivePeer): number {
  return p.role === "fake" ? 0 : p.role === "server" ? 1 : 2;
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function dashboardTitle(s: LiveStatus): string {
  const t = s.totals;
  const of = s.expect ?? t.clients;
  return `Cascade: ${t.verified}/${of} imaged${s.ended ? " (ended)" : ""}`;
}

function runState(s: LiveStatus): { cls: string; text: string } {
  if (s.ended) return { cls: "ended", text: `Ended: ${s.ended}` };
  if (s.paused && s.draining) return { cls: "paused", text: "Paused and draining" };
  if (s.paused) return { cls: "paused", text: "Paused: no new assignments" };
  if (s.draining) return { cls: "paused", text: "Draining: no new PCs admitted" };
  return { cls: "running", text: "Running" };
}

/** Why a PC failed, or its last failure while it is still being imaged; "" otherwise. */
export function failureNote(p: LivePeer): string {
  const last = p.failures.at(-1);
  const why = last
    ? `${last.reason}: ${last.detail}${last.server ? ` (server ${last.server})` : ""}`
    : "";
  const count = p.failures.length > 1 ? `${p.failures.length} failures, the last: ` : "";
  if (shownState(p) === "failed") {
    return `Left the run unimaged${why ? `; ${count || "after "}${why}` : ""}`;
  }
  if (p.verified || !last) return "";
  return `Retrying after ${count}${why}`;
}

function peerRow(p: LivePeer): string {
  const state = shownState(p);
  const pct = Math.floor(p.progress * 100);
  const live = p.state === "receiving";
  const role = p.role === "client"
    ? ""
    : ` <span class="role">${p.role === "fake" ? "fake" : "server"}</span>`;
  const where = [p.address, ...(p.mac && p.mac !== p.id ? [p.mac] : [])].join(" · ");
  const progress = p.state === "booting" ? "" : `<div class="prog"><div class="bar">` +
    `<i class="st-${state}" style="width:${pct}%"></i></div><span>${pct}%</span></div>`;
  const note = failureNote(p);
  return `<tr data-peer="${escapeHtml(p.id)}" data-state="${state}"${
    note ? ` class="noted"` : ""
  }>` +
    `<td class="pc"><b>${escapeHtml(clip(p.id, 24))}</b>${role}<small>${
      escapeHtml(where)
    }</small></td>` +
    `<td><span class="pill st-${state}">${state}</span></td>` +
    `<td>${progress}</td>` +
    `<td class="num">${live && p.rate ? formatRate(p.rate) : ""}</td>` +
    `<td class="num">${live && p.eta !== null ? formatDuration(p.eta) : ""}</td>` +
    `<td>${escapeHtml(p.server ?? p.servedBy.at(-1) ?? "")}</td>` +
    `<td class="to">${escapeHtml(clip(p.serving.join(" "), 40))}</td></tr>` +
    (note
      ? `\n<tr class="note${state === "failed" ? " bad" : ""}"><td colspan="7">${
        escapeHtml(clip(note, 200))
      }</td></tr>`
      : "");
}

function tile(cls: string, n: number | string, what: string): string {
  return `<div class="tile ${cls}"><b>${n}</b><span>${what}</span></div>`;
}

function eventLine(e: EventRecord, startedAt: number): string {
  const f = Object.entries(e.fields)
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  return `<li><time>+${formatDuration(Math.max(0, e.at - startedAt))}</time> <b>${
    escapeHtml(e.event)
  }</b> ${escapeHtml(clip(f, 90))}</li>`;
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? "" : "s"}`;
}

function header(s: LiveStatus): string {
  const run = runState(s);
  const facts = `${formatBytes(s.image.size)} · image ${s.imageId.slice(0, 12)} · ${s.mode} mode`;
  return `<header><h1>Cascade <span>${escapeHtml(s.image.name)}</span></h1>` +
    `<div class="facts">${facts}</div>` +
    `<div class="run ${run.cls}">${escapeHtml(clip(run.text, 80))}</div></header>`;
}

function overall(s: LiveStatus, clients: LivePeer[]): string {
  const of = Math.max(s.expect ?? 0, s.totals.clients);
  const held = clients.reduce((n, p) => n + (p.verified ? 1 : p.progress), 0);
  const pct = of ? Math.floor((held / of) * 100) : 0;
  const eta = s.eta !== null ? formatDuration(s.eta) : s.ended ? "done" : "–";
  return `<section class="overall">` +
    `<div class="headline"><b>${s.totals.verified} of ${of} PCs imaged</b><span>${pct}%</span></div>` +
    `<div class="clock"><span>elapsed <b>${formatDuration(s.now - s.startedAt)}</b></span>` +
    `<span>ETA <b>${eta}</b></span></div>` +
    `<div class="bigbar"><i style="width:${pct}%"></i></div></section>`;
}

function tiles(s: LiveStatus, clients: LivePeer[]): string {
  const t = s.totals;
  const count = (state: string) => clients.filter((p) => shownState(p) === state).length;
  const rate = clients.reduce((n, p) => n + (p.state === "receiving" ? p.rate : 0), 0);
  const booting = count("booting");
  return `<section class="tiles">` +
    tile("st-done", t.verified, "imaged") +
    tile("st-receiving", t.receiving, "receiving") +
    tile("st-waiting", t.waiting, "waiting") +
    tile("st-failed", count("failed"), "failed") +
    tile("st-serving", t.servers, "serving") +
    (booting ? tile("st-booting", booting, "booting") : "") +
    tile("st-rate", formatRate(rate), "total rate") +
    `</section>`;
}

/** Past this many rows the table packs tighter (address beside the name, less padding). */
const COMPACT_ROWS = 14;

function pcTable(s: LiveStatus, clients: LivePeer[]): string {
  const peers = [...s.peers].sort((a, b) =>
    roleRank(a) - roleRank(b) || a.id.localeCompare(b.id, "en", { numeric: true })
  );
  const servers = s.peers.length - clients.length;
  const head = ["PC · address", "state", "progress", "rate", "ETA", "from", "serving"];
  return `<section class="pcs"><h2>PCs <small>${plural(clients.length, "client")}, ` +
    `${plural(servers, "server")}</small></h2>` +
    `<table${peers.length > COMPACT_ROWS ? ` class="many"` : ""}><thead><tr>${
      head.map((h) => `<th>${h}</th>`).join("")
    }</tr></thead><tbody>\n` +
    (peers.map(peerRow).join("\n") || `<tr><td colspan="7" class="empty">No PCs yet</td></tr>`) +
    `\n</tbody></table></section>`;
}

function chips(items: string[]): string {
  return `<div class="chips">${items.join("") || `<span class="empty">empty</span>`}</div>`;
}

function aside(s: LiveStatus): string {
  const servers = s.queues.servers.map((q) =>
    `<span class="chip">${escapeHtml(q.id)} <small>×${q.capacity}</small></span>`
  );
  const clients = s.queues.clients.map((q) =>
    `<span class="chip">${escapeHtml(q.id)} <small>${
      formatDuration(Math.max(0, s.now - q.since))
    }</small></span>`
  );
  const events = [...s.recent].reverse().slice(0, 8).map((e) => eventLine(e, s.startedAt));
  return `<aside>` +
    `<section class="treebox"><h2>Who serves whom</h2>${renderTreeSvg(s.peers, 600)}</section>` +
    `<section class="queues"><h2>Server queue <small>${servers.length}</small></h2>${
      chips(servers)
    }` +
    `<h2>Client queue <small>${clients.length}</small></h2>${chips(clients)}</section>` +
    `<section class="events"><h2>Latest events</h2><ol>${events.join("")}</ol></section>` +
    `</aside>`;
}

/** The live part of the page: everything that changes during a run. */
export function renderDashboardMain(s: LiveStatus): string {
  const clients = s.peers.filter((p) => p.role === "client");
  return [
    header(s),
    overall(s, clients),
    tiles(s, clients),
    `<div class="cols">${pcTable(s, clients)}${aside(s)}</div>`,
    unenrolledLine(s),
  ].filter(Boolean).join("\n");
}

/** PCs that network-booted but are not enrolled: told to boot their own disk. */
function unenrolledLine(s: LiveStatus): string {
  const u = s.unenrolled ?? [];
  if (u.length === 0) return "";
  const shown = u.slice(0, 20).map((b) => `${b.mac} (${b.address})`).join(", ");
  return `<p class="unenrolled">Booted, not enrolled (boot their own disk): ${u.length}: ${
    escapeHtml(shown + (u.length > 20 ? ", …" : ""))
  }</p>`;
}

const STYLE = `
:root{--bg:#f4f6fa;--card:#fff;--ink:#0d1321;--dim:#4a5568;--line:#d5dbe5;
--booting:#6d28d9;--waiting:#5b6472;--receiving:#1d4ed8;--verifying:#a16207;--serving:#0e7490;
--done:#15803d;--failed:#c81e1e;--left:#57534e}
*{box-sizing:border-box}
html{font-size:clamp(15px,1.2vw,30px)}
body{margin:0;padding:.8rem 1.2rem;background:var(--bg);color:var(--ink);
font-family:"DejaVu Sans","Segoe UI",system-ui,sans-serif;line-height:1.25}
header{display:flex;align-items:baseline;gap:1.2rem;flex-wrap:wrap}
h1{margin:0;font-size:2rem;font-weight:800}h1 span{font-weight:600;color:var(--dim)}
.facts{font-size:1.05rem;color:var(--dim)}
.run{margin-left:auto;font-weight:800;font-size:1.2rem;padding:.2rem .8rem;border-radius:.4rem;color:#fff}
.run.running{background:var(--receiving)}.run.paused{background:var(--verifying)}.run.ended{background:var(--done)}
#conn{position:fixed;right:0;bottom:0;padding:.15rem .6rem;font-size:.8rem;color:var(--dim);
background:var(--bg);border-top-left-radius:.4rem}
#conn.lost{color:var(--failed);font-weight:700}
.overall{display:grid;grid-template-columns:1fr auto;align-items:baseline;gap:.3rem 1.2rem;margin:.6rem 0 .8rem}
.headline{font-size:1.7rem}.headline span{margin-left:.8rem;color:var(--done);font-weight:800}
.bigbar{grid-column:1/-1;height:1.3rem;background:#dfe4ec;border-radius:.65rem;overflow:hidden}
.bigbar i{display:block;height:100%;background:var(--done)}
.clock{display:flex;gap:1.2rem;font-size:1.3rem;white-space:nowrap}.clock b{font-size:1.7rem}
.tiles{display:flex;gap:.7rem;flex-wrap:wrap;margin-bottom:.7rem}
.tile{flex:1;min-width:7rem;background:var(--card);border-radius:.5rem;padding:.35rem .8rem;
border-left:.5rem solid var(--c);box-shadow:0 1px 3px #0002}
.tile b{display:block;font-size:2.2rem;line-height:1.1;color:var(--c)}.tile span{font-size:1rem;color:var(--dim)}
.tile.st-rate{flex:1.5}.tile b{white-space:nowrap}
.cols{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,1fr);gap:1rem;align-items:start}
@media (max-width:1100px){.cols{grid-template-columns:1fr}}
section.pcs,aside section{background:var(--card);border-radius:.5rem;padding:.5rem .8rem;box-shadow:0 1px 3px #0002}
aside{display:flex;flex-direction:column;gap:1rem}
h2{margin:.1rem 0 .4rem;font-size:1.25rem}h2 small{color:var(--dim);font-weight:400}
table{width:100%;border-collapse:collapse;font-size:1rem}
th{text-align:left;font-size:.8rem;text-transform:uppercase;letter-spacing:.05em;color:var(--dim);
border-bottom:2px solid var(--line);padding:.2rem .4rem}
td{padding:.28rem .4rem;border-bottom:1px solid var(--line);white-space:nowrap}
td.pc b{font-size:1.1rem}td small{display:block;font-size:.75rem;color:var(--dim)}
.role{font-size:.7rem;font-weight:700;color:var(--dim);text-transform:uppercase}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.noted td{border-bottom:0}
tr.note td{padding:0 .4rem .35rem 1.2rem;white-space:normal;font-size:.9rem;color:var(--verifying);font-weight:700}
tr.note.bad td{color:var(--failed)}td.to{white-space:normal;color:var(--dim);font-size:.9rem}
.pill{display:inline-block;min-width:6.2em;text-align:center;padding:.12rem .5rem;border-radius:1rem;
color:#fff;font-weight:800;font-size:.95rem}
.prog{display:flex;align-items:center;gap:.5rem;min-width:7rem}.prog span{width:3.2em;text-align:right;font-weight:700}
.bar{flex:1;height:.9rem;background:#e2e7ef;border-radius:.45rem;overflow:hidden}.bar i{display:block;height:100%}
.st-booting{--c:var(--booting)}.st-waiting{--c:var(--waiting)}.st-receiving{--c:var(--receiving)}
.st-verifying{--c:var(--verifying)}.st-serving{--c:var(--serving)}.st-done{--c:var(--done)}
.st-failed{--c:var(--failed)}.st-left{--c:var(--left)}.st-rate{--c:var(--ink)}
.pill,.bar i{background:var(--c)}
.tree{display:block;max-width:100%;height:auto}
.many td{padding:.08rem .4rem}.many td.pc small{display:inline;margin-left:.6rem}
.tree .edge{fill:none;stroke:#9aa5b5;stroke-width:3;stroke-linejoin:round}.tree .edge.active{stroke:var(--receiving);stroke-width:6}
.tree .node rect{fill:var(--c)}.tree text{fill:#fff;text-anchor:middle;font-family:inherit}
.tree .node-id{font-size:21px;font-weight:800}.tree .node-sub{font-size:16px}
.tree .node-bar{fill:#fff}.tree .tree-empty{fill:var(--dim);font-size:22px;text-anchor:start}
.chips{display:flex;flex-wrap:wrap;gap:.4rem;margin-bottom:.5rem}
.chip{background:#e8ecf3;border-radius:.4rem;padding:.15rem .5rem;font-weight:700}
.chip small{font-weight:400;color:var(--dim)}.empty{color:var(--dim)}
.events ol{list-style:none;margin:0;padding:0;font-size:.8rem}.events li{padding:.12rem 0;border-bottom:1px solid var(--line)}
.events time{color:var(--dim);font-variant-numeric:tabular-nums}
`;

// Swaps in each rendered update; EventSource reconnects by itself, so only say when it does.
const SCRIPT = `
(() => {
  const live = document.getElementById("live");
  const conn = document.getElementById("conn");
  const show = (cls, text) => { conn.className = cls; conn.textContent = text; };
  if (!("EventSource" in window)) return show("lost", "no live updates in this browser");
  const es = new EventSource("api/v1/events?view=dashboard");
  es.addEventListener("view", (e) => {
    const v = JSON.parse(e.data);
    live.innerHTML = v.html;
    document.title = v.title;
    show("live", "live");
  });
  es.addEventListener("end", () => { es.close(); show("ended", "run ended; updates stopped"); });
  es.onerror = () => { if (es.readyState !== 2) show("lost", "connection lost, reconnecting…"); };
})();
`;

export function renderDashboardPage(s: LiveStatus): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(dashboardTitle(s))}</title>
<noscript><meta http-equiv="refresh" content="5"></noscript>
<style>${STYLE}</style></head>
<body><main id="live">
${renderDashboardMain(s)}
</main><div id="conn">connecting…</div>
<script>${SCRIPT}</script></body></html>
`;
}
