// A plain HTML status page (pure: status in, HTML out). Refreshes itself every 2 s.
import { formatBytes, formatDuration, formatRate } from "../imagetools/units.ts";
import type { RunStatus } from "./status.ts";

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

export function renderStatusPage(s: RunStatus): string {
  const rows = s.peers.map((p) =>
    `<tr class="${p.state}"><td>${escapeHtml(p.id)}</td><td>${p.role}</td><td>${
      escapeHtml(p.address)
    }</td><td>${p.state}</td><td>${(p.progress * 100).toFixed(1)}%</td><td>${
      p.rate ? formatRate(p.rate) : ""
    }</td><td>${escapeHtml(p.server ?? "")}</td><td>${
      escapeHtml(p.failures.at(-1)?.detail ?? "")
    }</td></tr>`
  ).join("\n");
  const t = s.totals;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>Cascade: ${escapeHtml(s.image.name)}</title>
<style>body{font:18px system-ui,sans-serif;margin:1em}table{border-collapse:collapse}
td,th{padding:.2em .6em;border-bottom:1px solid #ccc;text-align:left}
.serving,.done{color:#060}.left{color:#a00}</style></head><body>
<h1>Cascade: ${escapeHtml(s.image.name)} (${formatBytes(s.image.size)})</h1>
<p>Image ${s.imageId.slice(0, 12)}, ${s.mode} mode, running ${formatDuration(s.now - s.startedAt)}${
    s.ended ? `, ended: ${escapeHtml(s.ended)}` : ""
  }${s.paused ? ", paused" : ""}.</p>
<p>${t.verified} of ${t.clients} PCs verified, ${t.receiving} receiving, ${t.waiting} waiting.
Server queue: ${escapeHtml(s.queues.servers.map((q) => q.id).join(", ") || "empty")}.
Client queue: ${escapeHtml(s.queues.clients.map((q) => q.id).join(", ") || "empty")}.</p>
<table><thead><tr><th>PC</th><th>role</th><th>address</th><th>state</th><th>progress</th>
<th>rate</th><th>server</th><th>last failure</th></tr></thead><tbody>
${rows}
</tbody></table></body></html>
`;
}
