// The live dashboard at "/": one self-contained page (inline CSS and script, nothing loaded from
// elsewhere) made to be read on a projector across a room, for 5 PCs or 1,500. Pure: the feed's
// snapshot in, HTML out.
//
// The master sends data, not markup: the page carries the feed's snapshot inline (so the first
// paint needs no second request), then follows /api/v1/feed/events (deltas) and renders itself
// (page_script.ts): the room as tiles, the list, the chains, one PC's details, the admin bar.
import type { FeedSnapshot } from "../../protocol/mod.ts";
import { PAGE_SCRIPT } from "./page_script.ts";

const STYLE = `
:root{--bg:#f4f6fa;--card:#fff;--ink:#0d1321;--dim:#4a5568;--line:#d5dbe5;
--booting:#6d28d9;--waiting:#5b6472;--receiving:#1d4ed8;--verifying:#a16207;--serving:#0e7490;
--done:#15803d;--failed:#e00000;--left:#57534e}
*{box-sizing:border-box}
html{font-size:clamp(13px,.9vw,26px)}
body{margin:0;padding:.6rem 1rem;background:var(--bg);color:var(--ink);
font-family:"DejaVu Sans","Segoe UI",system-ui,sans-serif;line-height:1.25}
header{display:flex;align-items:center;gap:1rem;flex-wrap:wrap}
h1{margin:0;font-size:1.8rem;font-weight:800}h1 span{font-weight:600;color:var(--dim)}
#facts{color:var(--dim)}
.run{font-weight:800;font-size:1.1rem;padding:.15rem .7rem;border-radius:.4rem;color:#fff}
.run.running{background:var(--receiving)}.run.paused{background:var(--verifying)}.run.ended{background:var(--done)}
#admin{margin-left:auto;display:flex;gap:.4rem;align-items:center;flex-wrap:wrap}
#admin form{display:flex;gap:.4rem;align-items:center}
#admin input{font:inherit;padding:.15rem .4rem;width:10rem}
button{font:inherit;cursor:pointer;border:1px solid var(--line);background:var(--card);border-radius:.4rem;padding:.15rem .6rem}
button.act{font-weight:700}#adminmsg{color:var(--dim);font-size:.9rem}
#conn{position:fixed;right:0;bottom:0;padding:.15rem .6rem;font-size:.8rem;color:var(--dim);
background:var(--bg);border-top-left-radius:.4rem}
#conn.lost{color:var(--failed);font-weight:700}
.overall{display:grid;grid-template-columns:1fr auto;align-items:baseline;gap:.2rem 1.2rem;margin:.4rem 0}
#headline{font-size:1.6rem}#headline span{margin-left:.8rem;color:var(--done);font-weight:800}
.bigbar{grid-column:1/-1;height:1rem;background:#dfe4ec;border-radius:.5rem;overflow:hidden}
.bigbar i{display:block;height:100%;background:var(--done)}
#clock{display:flex;gap:1.2rem;font-size:1.2rem;white-space:nowrap}#clock b{font-size:1.5rem}
nav{display:flex;gap:.6rem;align-items:center;flex-wrap:wrap;margin:.3rem 0 .5rem}
#filters{display:flex;gap:.4rem;flex-wrap:wrap;align-items:center}
button.f{border-left:.4rem solid var(--c);font-weight:700}button.f b{color:var(--c)}
button.f.on{background:var(--c);color:#fff}button.f.on b{color:#fff}
button.f.loud{background:var(--failed);color:#fff;animation:pulse 1.2s infinite}button.f.loud b{color:#fff}
@keyframes pulse{50%{box-shadow:0 0 0 .3rem #e0000055}}
#search{font:inherit;padding:.2rem .5rem;width:22rem;margin-left:auto}
.rate{color:var(--dim);font-size:.9rem}
.cols{display:grid;grid-template-columns:minmax(0,7fr) minmax(0,3fr);gap:.8rem;align-items:start}
@media (max-width:1100px){.cols{grid-template-columns:1fr}}
section.card,aside section{background:var(--card);border-radius:.5rem;padding:.4rem .7rem;box-shadow:0 1px 3px #0002}
aside{display:flex;flex-direction:column;gap:.8rem}
#room{--tile:24px;margin-bottom:.8rem}
.grp h3 button{font-size:.75rem;margin-left:.6rem;padding:0 .4rem}
.grp h3{margin:.1rem 0 .15rem;font-size:.85rem;color:var(--dim);font-weight:700}.grp h3 small{font-weight:400}
.bad{color:var(--failed)}
.tiles{display:flex;flex-wrap:wrap;gap:2px;margin-bottom:.3rem}
.t{display:block;width:var(--tile);height:var(--tile);border-radius:3px;cursor:pointer;background:var(--c)}
.t.st-receiving{background:linear-gradient(to top,var(--receiving) var(--p),#9db5f0 var(--p))}
.t.srv{border-radius:50%}
.t.st-failed{outline:3px solid #ff5c5c;outline-offset:-1px;animation:pulse 1.2s infinite}
.t.dim{opacity:.15}.t.sel,.t:hover{outline:3px solid var(--ink);outline-offset:1px}
h2{margin:.1rem 0 .4rem;font-size:1.15rem}h2 small,h3 small{color:var(--dim);font-weight:400}
table{width:100%;border-collapse:collapse;font-size:.95rem}
th{text-align:left;font-size:.75rem;text-transform:uppercase;letter-spacing:.05em;color:var(--dim);
border-bottom:2px solid var(--line);padding:.2rem .4rem}
th[data-sort]{cursor:pointer}th.asc:after{content:" ▲"}th.desc:after{content:" ▼"}
td{padding:.1rem .4rem;border-bottom:1px solid var(--line);white-space:nowrap}
td.pc small{margin-left:.6rem;font-size:.75rem;color:var(--dim)}
tr[data-peer]{cursor:pointer}tr.sel td{background:#e8ecf3}
td.why{white-space:normal;color:var(--failed);font-size:.85rem}
.role{font-size:.7rem;font-weight:700;color:var(--dim);text-transform:uppercase}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{display:inline-block;min-width:6em;text-align:center;padding:.05rem .5rem;border-radius:1rem;
color:#fff;font-weight:800;font-size:.85rem;background:var(--c)}
.prog{display:flex;align-items:center;gap:.5rem;min-width:7rem}.prog span{width:3.2em;text-align:right;font-weight:700}
.bar{flex:1;height:.8rem;background:#e2e7ef;border-radius:.4rem;overflow:hidden}.bar i{display:block;height:100%;background:var(--c)}
.more,.empty{color:var(--dim)}
.st-booting{--c:var(--booting)}.st-waiting{--c:var(--waiting)}.st-receiving{--c:var(--receiving)}
.st-verifying{--c:var(--verifying)}.st-serving{--c:var(--serving)}.st-done{--c:var(--done)}
.st-failed{--c:var(--failed)}.st-left{--c:var(--left)}.st-all{--c:var(--ink)}
#chains{font-size:.9rem;max-height:40vh;overflow:auto}.chain{margin:.15rem 0}
.n{display:inline-block;padding:0 .35rem;border-radius:.3rem;color:#fff;background:var(--c);font-weight:700;cursor:pointer}
.run-of{font-weight:700}.strip{display:flex;height:.5rem;margin-top:.1rem}.strip i{flex:1;background:var(--c)}
#detail{position:relative}#detail table{font-size:.85rem}#detail th{text-transform:none;letter-spacing:0;width:7rem}
#detail .close{position:absolute;right:.4rem;top:.3rem}
ol.log,ol.fails,#events{margin:0;padding-left:1.2rem;font-size:.8rem;max-height:14rem;overflow:auto}
ol.fails li{color:var(--failed)}#events{list-style:none;padding:0}#events li{border-bottom:1px solid var(--line)}
#runs{display:flex;gap:.5rem;flex-wrap:wrap;margin:.3rem 0 0}
#runs button.on{background:var(--ink);color:#fff}#runs button.on .bad{color:#ff8080}
#unenrolled{font-size:.85rem;color:var(--verifying);font-weight:700;margin:.4rem 0 0}
`;

/** The snapshot inside a script element: "<" escaped, so no text in it can end the element. */
function inlineJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c");
}

export function renderDashboardPage(snapshot: FeedSnapshot, title: string): string {
  const escaped = title.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escaped}</title>
<style>${STYLE}</style></head>
<body>
<header><h1>Cascade <span id="image"></span></h1><div id="facts"></div><div id="run" class="run"></div>
<div id="admin"></div></header>
<nav id="runs" hidden></nav>
<section class="overall"><div id="headline"></div><div id="clock"></div>
<div class="bigbar"><i id="bigbar"></i></div></section>
<nav><div id="filters"></div>
<input id="search" type="search" placeholder="search name, MAC or address" autocomplete="off"></nav>
<div class="cols"><div>
<section id="room" class="card"></section>
<section class="card"><h2>PCs <small id="listcount"></small></h2><div id="list"></div></section>
</div><aside>
<section id="detail" hidden></section>
<section><h2>Who serves whom</h2><div id="chains"></div></section>
<section><h2>Latest events</h2><ol id="events"></ol><p id="unenrolled" hidden></p></section>
<section id="adminlog" hidden><h2>Admin actions</h2><ol class="log"></ol></section>
</aside></div>
<div id="conn">connecting…</div>
<noscript><p>This page draws itself with JavaScript; the run as JSON is at /api/v1/status.</p></noscript>
<script type="application/json" id="snap">${inlineJson(snapshot)}</script>
<script>${PAGE_SCRIPT}</script></body></html>
`;
}
