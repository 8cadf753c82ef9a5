// How the dashboard names a PC's state and its failures, in words. Pure.
import type { LivePeer, LiveStatus } from "../../protocol/mod.ts";

/** What the dashboard calls a peer's state: a client that left unimaged has failed. */
export function shownState(p: LivePeer): string {
  return p.role === "client" && p.state === "left" && !p.verified ? "failed" : p.state;
}

export function dashboardTitle(s: LiveStatus): string {
  const t = s.totals;
  const of = Math.max(s.expect ?? 0, t.clients);
  return `Cascade: ${t.verified}/${of} imaged${s.ended ? " (ended)" : ""}`;
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
