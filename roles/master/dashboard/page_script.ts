// The dashboard page's own script (it runs in the browser; plain JS in a string, since this
// repository type-checks without the DOM library). It holds the feed's snapshot, applies each
// delta with applyFeedDelta (inlined from roles/protocol/feed.ts, the same code the master's
// tests replay), and renders: the room as tiles (only changed tiles are touched), the list
// (filter, sort, search), the chains with long runs collapsed, one PC's details, and the admin
// bar. The state lives here; the master sends data, never markup.
import { applyFeedDelta } from "../../protocol/mod.ts";
import { chainRuns } from "./chains.ts";

const CLIENT = String.raw`
const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => "&#" + ch.charCodeAt(0) + ";");
const units = (n, u, step) => {
  let i = 0;
  while (n >= step * 0.9995 && i < u.length - 1) { n /= step; i++; }
  return (n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)) + " " + u[i];
};
const bytes = (n) => units(n, ["B", "KiB", "MiB", "GiB", "TiB"], 1024);
const rate = (n) => units(n, ["B/s", "kB/s", "MB/s", "GB/s"], 1000);
const dur = (s) => {
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h " + String(Math.floor(s / 60) % 60).padStart(2, "0") + "m";
};
const STATES = ["failed", "receiving", "verifying", "waiting", "booting", "serving", "done", "left"];
const RANK = { failed: 0, receiving: 1, verifying: 2, waiting: 3, booting: 4, serving: 5, done: 6, left: 7 };
const LIST_MAX = 300;
const ui = { filter: "all", query: "", sort: "state", desc: false, selected: null, tab: "list" };
let S = null;
let admin = null;
// With several images the page follows one run (?image=NAME) and links the others.
const IMG = new URLSearchParams(location.search).get("image");
const Q = IMG ? "?image=" + encodeURIComponent(IMG) : "";
const tiles = new Map();

const nameOf = (id, p) => p.n || id;
const eta = (p) => p.s === "receiving" && p.v ? (1 - p.p / 1000) * S.run.image.size / p.v : null;
const matches = (id, p) => {
  if (ui.filter !== "all" && p.s !== ui.filter) return false;
  const q = ui.query;
  if (!q) return true;
  return [id, p.n, p.m, p.a].some((x) => x && x.toLowerCase().includes(q));
};
const byName = (a, b) => a.localeCompare(b, "en", { numeric: true });
const tileTitle = (id, p) => nameOf(id, p) + " · " + p.s + (p.s === "receiving" ? " " + Math.floor(p.p / 10) + "%" : "") +
  (p.a ? " · " + p.a : "") + (p.why ? "\n" + p.why : "");

function tileHtml(id, p) {
  const cls = "t st-" + p.s + (p.r !== "c" ? " srv" : "") + (ui.selected === id ? " sel" : "") +
    (matches(id, p) ? "" : " dim");
  return '<i class="' + cls + '" data-id="' + esc(id) + '" style="--p:' + p.p / 10 + '%" title="' +
    esc(tileTitle(id, p)) + '"></i>';
}

function fitTiles(n, groups) {
  const room = $("#room");
  const w = room.clientWidth - 8;
  const h = Math.max(200, window.innerHeight - room.getBoundingClientRect().top - 12 - groups * 22);
  let s = Math.floor(Math.sqrt((w * h) / Math.max(1, n)));
  while (s > 8 && Math.floor(w / (s + 2)) * Math.floor(h / (s + 2)) < n) s--;
  room.style.setProperty("--tile", Math.max(8, Math.min(56, s - 2)) + "px");
}

function renderRoom() {
  const groups = new Map();
  for (const [id, p] of Object.entries(S.peers)) {
    const g = p.r !== "c" ? "servers" : p.g || "";
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(id);
  }
  const keys = [...groups.keys()].sort((a, b) => (a === "servers" ? -1 : b === "servers" ? 1 : byName(a, b)));
  const named = keys.filter((k) => k !== "servers").length > 1 || (keys.length === 1 && keys[0]);
  const html = [];
  tiles.clear();
  for (const g of keys) {
    const ids = groups.get(g).sort((a, b) =>
      (S.peers[a].s === "failed" ? 0 : 1) - (S.peers[b].s === "failed" ? 0 : 1) || byName(a, b));
    const failed = ids.filter((id) => S.peers[id].s === "failed").length;
    const regroup = admin && (S.run.groups || []).includes(g)
      ? ' <button class="act" data-act="reimage" data-group="' + esc(g) + '">re-image group</button>' : "";
    html.push('<div class="grp"><h3>' + esc(g === "servers" ? "servers" : g || (named ? "no group" : "all PCs")) +
      " <small>" + ids.length + (failed ? ' · <b class="bad">' + failed + " failed</b>" : "") + "</small>" + regroup + "</h3><div class=\"tiles\">" +
      ids.map((id) => tileHtml(id, S.peers[id])).join("") + "</div></div>");
  }
  const room = $("#room");
  fitTiles(Object.keys(S.peers).length, keys.length);
  room.innerHTML = html.join("") || '<p class="empty">No PCs yet</p>';
  for (const el of room.querySelectorAll(".t")) tiles.set(el.dataset.id, el);
}

function patchTile(id) {
  const el = tiles.get(id);
  const p = S.peers[id];
  if (!el || !p) return false;
  const t = document.createElement("template");
  t.innerHTML = tileHtml(id, p);
  const fresh = t.content.firstChild;
  el.className = fresh.className;
  el.style.cssText = fresh.style.cssText;
  el.title = fresh.title;
  return true;
}

function counts() {
  const n = { all: 0 };
  for (const p of Object.values(S.peers)) {
    if (p.r !== "c") continue;
    n.all++;
    n[p.s] = (n[p.s] || 0) + 1;
  }
  return n;
}

function renderHead() {
  const r = S.run, t = r.totals;
  const of = Math.max(r.expect || 0, t.clients);
  let held = 0;
  for (const p of Object.values(S.peers)) if (p.r === "c") held += p.ok ? 1 : p.p / 1000;
  const pct = of ? Math.floor((held / of) * 100) : 0;
  document.title = "Cascade: " + t.verified + "/" + of + " imaged" + (r.ended ? " (ended)" : "");
  $("#image").textContent = r.image.name;
  $("#facts").textContent = bytes(r.image.size) + " · image " + r.imageId.slice(0, 12) + " · " + r.mode + " mode";
  const run = $("#run");
  const [cls, text] = r.ended ? ["ended", "Ended: " + r.ended] : r.paused && r.draining ? ["paused", "Paused and draining"] :
    r.paused ? ["paused", "Paused: no new assignments"] : r.draining ? ["paused", "Draining: no new PCs admitted"] : ["running", "Running"];
  run.className = "run " + cls;
  run.textContent = text;
  $("#headline").innerHTML = "<b>" + t.verified + " of " + of + " PCs imaged</b><span>" + pct + "%</span>";
  $("#clock").innerHTML = "<span>elapsed <b>" + dur(S.t) + "</b></span><span>ETA <b>" +
    (r.eta !== null ? dur(r.eta) : r.ended ? "done" : "–") + "</b></span>";
  $("#bigbar").style.width = pct + "%";
  const site = r.site || [];
  $("#runs").hidden = site.length === 0;
  $("#runs").innerHTML = site.map((x) => '<button class="' + (x.name === r.name ? "on" : "") + '" data-run="' +
    esc(x.name) + '"><b>' + esc(x.name) + "</b> " + x.verified + "/" + x.clients + " imaged" +
    (x.failed ? ' · <span class="bad">' + x.failed + " failed</span>" : "") + (x.ended ? " · ended" : x.paused ? " · paused" : "") +
    "</button>").join("");
  const n = counts();
  let total = 0;
  for (const p of Object.values(S.peers)) if (p.s === "receiving" && p.v) total += p.v;
  $("#filters").innerHTML = ["all", ...STATES].filter((s) => s === "all" || n[s] || s === "failed" || s === ui.filter)
    .map((s) => '<button class="f st-' + s + (ui.filter === s ? " on" : "") + (s === "failed" && n.failed ? " loud" : "") +
      '" data-filter="' + s + '">' + s + " <b>" + (n[s] || 0) + "</b></button>").join("") +
    '<span class="rate">' + rate(total) + " total · queues: " + r.queues.servers + " servers, " + r.queues.clients + " clients</span>";
  $("#events").innerHTML = r.recent.map((e) => "<li>" + esc(e) + "</li>").join("");
  const u = r.unenrolled;
  $("#unenrolled").hidden = u.count === 0;
  $("#unenrolled").textContent = "Booted, not enrolled (boot their own disk): " + u.count + ": " +
    u.first.join(", ") + (u.count > u.first.length ? ", …" : "");
}

function sortKey(id, p) {
  switch (ui.sort) {
    case "name": return [nameOf(id, p)];
    case "progress": return [p.ok ? 1001 : p.p];
    case "rate": return [p.v || 0];
    case "failures": return [p.f || 0];
    case "address": return [p.a || ""];
    default: return [RANK[p.s] ?? 9, nameOf(id, p)];
  }
}

function cmp(a, b) {
  for (let i = 0; i < a.length; i++) {
    const d = typeof a[i] === "number" ? a[i] - b[i] : byName(String(a[i]), String(b[i]));
    if (d) return d;
  }
  return 0;
}

function renderList() {
  const rows = Object.entries(S.peers).filter(([id, p]) => matches(id, p))
    .map(([id, p]) => [id, p, sortKey(id, p)]);
  rows.sort((x, y) => (ui.desc ? -1 : 1) * cmp(x[2], y[2]) || byName(x[0], y[0]));
  const head = [["name", "PC · address"], ["state", "state"], ["progress", "progress"], ["rate", "rate"], ["", "ETA"],
    ["", "from"], ["failures", "failures"]];
  const th = head.map(([k, label]) => k ? '<th data-sort="' + k + '" class="' + (ui.sort === k ? (ui.desc ? "desc" : "asc") : "") + '">' +
    label + "</th>" : "<th>" + label + "</th>").join("");
  const body = rows.slice(0, LIST_MAX).map(([id, p]) => {
    const e = eta(p);
    const pct = Math.floor(p.p / 10);
    return '<tr data-peer="' + esc(id) + '" data-state="' + p.s + '"' + (ui.selected === id ? ' class="sel"' : "") + ">" +
      '<td class="pc"><b>' + esc(nameOf(id, p)) + "</b>" + (p.r !== "c" ? ' <span class="role">' + (p.r === "f" ? "fake" : "server") + "</span>" : "") +
      "<small>" + esc([p.a, p.m].filter(Boolean).join(" · ")) + "</small></td>" +
      '<td><span class="pill st-' + p.s + '">' + p.s + "</span></td>" +
      '<td><div class="prog"><div class="bar"><i class="st-' + p.s + '" style="width:' + pct + '%"></i></div><span>' + pct + "%</span></div></td>" +
      '<td class="num">' + (p.v ? rate(p.v) : "") + '</td><td class="num">' + (e !== null ? dur(e) : "") + "</td>" +
      "<td>" + esc(p.sv || "") + "</td>" +
      '<td class="why">' + (p.f ? "<b>" + p.f + "</b> " + esc(p.why || "") : "") + "</td></tr>";
  }).join("");
  $("#list").innerHTML = "<table><thead><tr>" + th + "</tr></thead><tbody>" +
    (body || '<tr><td colspan="7" class="empty">No PC matches</td></tr>') + "</tbody></table>" +
    (rows.length > LIST_MAX ? '<p class="more">showing ' + LIST_MAX + " of " + rows.length + ": narrow the filter or search</p>" : "");
  $("#listcount").textContent = rows.length + " shown";
}

// The chains: who serves whom, a run of PCs that each serve exactly one collapsed into one strip.
function renderChains() {
  const node = (id) => '<span class="n st-' + S.peers[id].s + '" data-id="' + esc(id) + '">' + esc(nameOf(id, S.peers[id])) + "</span>";
  const out = chainRuns(S.peers).map(({ depth, ids }) => {
    const pad = '<div class="chain" style="margin-left:' + Math.min(depth, 12) + 'rem">';
    if (ids.length <= 3) return pad + ids.map(node).join(" → ") + "</div>";
    const rec = ids.filter((r) => S.peers[r].s === "receiving").length;
    const low = Math.min(...ids.map((r) => (S.peers[r].ok ? 1000 : S.peers[r].p)));
    return pad + node(ids[0]) + ' → <span class="run-of">' + (ids.length - 2) + " PCs</span> → " + node(ids.at(-1)) +
      " <small>" + rec + " receiving, lowest " + Math.floor(low / 10) + '%</small><div class="strip">' +
      ids.map((r) => '<i class="st-' + S.peers[r].s + '" title="' + esc(r) + '"></i>').join("") + "</div></div>";
  });
  $("#chains").innerHTML = out.join("") || '<p class="empty">No servers yet</p>';
}

async function showPeer(id) {
  ui.selected = id;
  const box = $("#detail");
  box.hidden = false;
  box.innerHTML = "<h2>" + esc(id) + "</h2><p>loading…</p>";
  const res = await fetch("api/v1/peers/" + encodeURIComponent(id) + Q);
  if (ui.selected !== id) return;
  if (!res.ok) { box.innerHTML = "<h2>" + esc(id) + "</h2><p>" + esc((await res.json()).error) + "</p>"; return; }
  const { peer, events, boot, startedAt } = await res.json();
  const row = (k, v) => v === undefined || v === "" ? "" : "<tr><th>" + k + "</th><td>" + esc(v) + "</td></tr>";
  const at = (t) => "+" + dur(t - startedAt);
  box.innerHTML = '<button class="close" data-close>×</button><h2>' + esc(peer.name) + ' <span class="pill st-' +
    esc(S.peers[id] ? S.peers[id].s : peer.state) + '">' + esc(S.peers[id] ? S.peers[id].s : peer.state) + "</span></h2>" +
    "<table>" + row("id", peer.id) + row("MAC", peer.mac) + row("address", peer.address) + row("role", peer.role) +
    row("progress", Math.floor(peer.progress * 100) + "% (" + peer.held + " of " + peer.total + " chunks)") +
    row("received", bytes(peer.bytes)) + row("served by", peer.servedBy.join(" → ")) + row("serving now", peer.serving.join(", ")) +
    row("verified", peer.verified ? "yes, by read-back" : "no") + row("time", peer.seconds !== null ? dur(peer.seconds) : "") +
    "</table>" +
    (admin && peer.mac ? '<p><button class="act" data-act="reimage" data-mac="' + esc(peer.mac) + '">Re-image at next boot</button></p>' : "") +
    "<h3>Failures <small>" + peer.failures.length + "</small></h3><ol class=\"fails\">" +
    peer.failures.map((f) => "<li><b>" + esc(f.reason) + "</b> " + esc(f.detail) + (f.server ? " <small>(server " + esc(f.server) + ")</small>" : "") + "</li>").join("") + "</ol>" +
    "<h3>Boot answers <small>" + (boot || []).length + "</small></h3>" + ((boot || []).length ? '<ol class="log">' + boot.map((b) =>
      "<li><time>" + at(b.at) + "</time> <b>" + esc(b.answer === "image" ? "image it" : b.answer.replace("local:", "boot its disk: ")) + "</b>" +
      (b.group ? " · group " + esc(b.group) : "") + " · from " + esc(b.address) + "</li>").join("") + "</ol>" : '<p class="empty">none (not network-booted from this master)</p>') +
    "<h3>History</h3><ol class=\"log\">" + events.map((e) => "<li><time>" + at(e.at) + "</time> <b>" + esc(e.event) + "</b> " +
      esc(Object.entries(e.fields).filter((kv) => kv[1] !== undefined && kv[1] !== "").map((kv) => kv[0] + "=" + kv[1]).join(" ")) + "</li>").join("") + "</ol>";
  for (const el of document.querySelectorAll(".sel")) el.classList.remove("sel");
  tiles.get(id)?.classList.add("sel");
}

function renderAdmin() {
  const bar = $("#admin");
  if (!admin) {
    bar.innerHTML = '<form id="signin"><input name="who" placeholder="your name" maxlength="40" autocomplete="username">' +
      '<input name="token" type="password" placeholder="admin token" autocomplete="current-password">' +
      '<button>Sign in</button><span id="adminmsg"></span></form>';
    return;
  }
  bar.innerHTML = "<span>signed in as <b>" + esc(admin.who) + "</b></span>" +
    ["pause", "resume", "drain", "end"].map((a) => '<button class="act" data-act="' + a + '">' + a + "</button>").join("") +
    '<button class="act" data-act="reimage" data-mac="all">re-image all</button>' +
    '<button class="act" data-act="enrol">enrol…</button>' +
    '<button id="signout">sign out</button><span id="adminmsg"></span>';
}

async function act(action, body) {
  // Run actions act on the run this page shows (every run only from the API).
  if (S && S.run.name && ["pause", "resume", "drain", "end"].includes(action)) body = Object.assign({}, body, { image: S.run.name });
  const res = await fetch("api/v1/admin/" + action, {
    method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": admin.csrf },
    body: body ? JSON.stringify(body) : "",
  });
  const text = await res.text();
  $("#adminmsg").textContent = res.ok ? action + ": done" : action + ": " + (JSON.parse(text).error || res.status);
  if (res.status === 401) { admin = null; renderAdmin(); }
  loadAdminLog();
}

// The admin actions the history kept (who, which sign-in, when), newest first.
async function loadAdminLog() {
  // A master that has just ended and gone answers nothing: the list stays as it was.
  const res = await fetch("api/v1/admin/log").catch(() => null);
  if (!res || !res.ok) return;
  const { kept, actions } = await res.json();
  const box = $("#adminlog");
  box.hidden = !kept;
  const when = (ms) => new Date(ms).toLocaleString();
  box.querySelector("ol").innerHTML = actions.map((a) => "<li><time>" + esc(when(a.at)) + "</time> <b>" + esc(a.action) + "</b>" +
    (a.image ? " · " + esc(a.image) : "") + " by " + esc(a.by) + ' <small title="sign-in">' + esc(a.session) + "</small> " +
    esc(Object.entries(JSON.parse(a.detail)).map((kv) => kv[0] + "=" + kv[1]).join(" ")) + "</li>").join("") ||
    '<li class="empty">none yet</li>';
}

// Rendering waits for the next frame; tiles are patched one by one unless the layout moved.
// The first time, each part gets its own task, so the page paints as each is drawn: the head
// (the run's numbers) at once, the room's tiles next, then the list (300 rows of a table take
// longer to lay out than 1,500 tiles) and the chains.
const pending = { queued: false, full: true, changed: new Set(), painted: false };
function renderRoomPart() {
  if (pending.full) renderRoom();
  else for (const id of pending.changed) if (!patchTile(id)) { renderRoom(); break; }
  pending.full = false;
  pending.changed.clear();
}
function render(full) {
  if (full) pending.full = true;
  if (pending.queued || !S) return;
  pending.queued = true;
  requestAnimationFrame(() => {
    pending.queued = false;
    if (!S) return;
    renderHead();
    if (pending.painted) {
      renderRoomPart();
      renderList();
      renderChains();
      return;
    }
    pending.painted = pending.queued = true;
    const later = (fn) => new Promise((r) => setTimeout(() => { if (S) fn(); r(); }, 0));
    later(renderRoomPart).then(() => later(() => { renderList(); renderChains(); }))
      .then(() => { pending.queued = false; if (pending.full || pending.changed.size) render(false); });
  });
}

let lastAdmin = "";
function onDelta(d) {
  const admined = d.run && d.run.recent.find((e) => / admin /.test(e));
  if (admined && admined !== lastAdmin) { lastAdmin = admined; loadAdminLog(); }
  const before = S && Object.keys(S.peers).length;
  const failedBefore = new Set(Object.keys(d.set || {}).filter((id) => S.peers[id] && S.peers[id].s === "failed"));
  if (!applyFeedDelta(S, d)) return false;
  let full = (d.del || []).length > 0 || Object.keys(S.peers).length !== before;
  for (const id of Object.keys(d.set || {})) {
    if ((S.peers[id].s === "failed") !== failedBefore.has(id)) full = true;
    pending.changed.add(id);
  }
  render(full);
  return true;
}

function connect() {
  const conn = $("#conn");
  const show = (cls, text) => { conn.className = cls; conn.textContent = text; };
  if (!("EventSource" in window)) return show("lost", "no live updates in this browser");
  const es = new EventSource("api/v1/feed/events" + Q);
  es.addEventListener("snapshot", (e) => { S = JSON.parse(e.data); render(true); show("live", "live"); });
  es.addEventListener("delta", (e) => {
    if (!S || !onDelta(JSON.parse(e.data))) { es.close(); S = null; setTimeout(connect, 100); return; }
    show("live", "live");
  });
  es.addEventListener("end", () => { es.close(); show("ended", "run ended; updates stopped"); });
  es.onerror = () => { if (es.readyState !== 2) show("lost", "connection lost, reconnecting…"); };
}

document.addEventListener("click", (e) => {
  const t = e.target.closest("[data-run],[data-filter],[data-sort],[data-id],[data-peer],[data-act],[data-tab],[data-close],#signout");
  if (!t) return;
  if (t.dataset.run) { if (t.dataset.run !== S.run.name) location.search = "?image=" + encodeURIComponent(t.dataset.run); }
  else if (t.dataset.filter) { ui.filter = t.dataset.filter; render(true); }
  else if (t.dataset.sort) { ui.desc = ui.sort === t.dataset.sort ? !ui.desc : false; ui.sort = t.dataset.sort; render(false); }
  else if (t.dataset.close !== undefined) { ui.selected = null; $("#detail").hidden = true; render(true); }
  else if (t.dataset.act) {
    const a = t.dataset.act;
    if (a === "end") {
      const reason = prompt("End the run for every PC. Reason:", "ended by an admin");
      if (reason !== null) act("end", reason ? { reason } : null);
    } else if (a === "reimage" && t.dataset.group) {
      if (confirm("Image every PC of group " + t.dataset.group + " again at its next network boot?")) act("reimage", { group: t.dataset.group });
    } else if (a === "reimage") act("reimage", { mac: t.dataset.mac });
    else if (a === "enrol") {
      const minutes = prompt("Image every new PC that network-boots in the next N minutes. N:", "10");
      if (minutes !== null) act("enrol", { minutes: Number(minutes) });
    }
    else act(a, null);
  } else if (t.id === "signout") {
    fetch("api/v1/session", { method: "DELETE", headers: { "x-csrf-token": admin.csrf } }).then(() => { admin = null; renderAdmin(); render(true); });
  } else showPeer(t.dataset.id || t.dataset.peer);
});
document.addEventListener("input", (e) => {
  if (e.target.id === "search") { ui.query = e.target.value.trim().toLowerCase(); render(true); }
});
document.addEventListener("submit", async (e) => {
  if (e.target.id !== "signin") return;
  e.preventDefault();
  const f = new FormData(e.target);
  const res = await fetch("api/v1/session", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ who: f.get("who") || "admin", token: f.get("token") }),
  });
  const body = await res.json();
  if (!res.ok) { $("#adminmsg").textContent = body.error; return; }
  admin = body;
  renderAdmin();
  render(true);
});
window.addEventListener("resize", () => S && render(true));

const first = $("#snap");
if (first) { S = JSON.parse(first.textContent); render(true); }
fetch("api/v1/session").then((r) => r.json()).then((b) => { if (b.signedIn) admin = b; renderAdmin(); render(true); });
loadAdminLog();
connect();
`;

/** The page's script: the shared delta code, then the page's own. */
export const PAGE_SCRIPT = `(() => {\nconst applyFeedDelta = ${applyFeedDelta};\n` +
  `const chainRuns = ${chainRuns};\n${CLIENT}})();`;
