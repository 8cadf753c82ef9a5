// Who serves whom, drawn as a tree (SVG). Pure: peers in, SVG text out.
//
// Rendered on the master, never in the browser: the dashboard's live updates carry this SVG
// ready-made, so there is one renderer (tested here, in Deno) rather than a second copy in
// the page's script, and the page also works before (or without) its script.
//
// A client hangs under the server it fetches from now (receiving) or, once it holds the image,
// under the server that completed it. Waiting clients are in the queue, not in the tree.
import type { PeerStatus } from "../../protocol/mod.ts";
import { escapeHtml } from "./html.ts";

export type TreePeer = Pick<
  PeerStatus,
  "id" | "role" | "state" | "server" | "servedBy" | "progress" | "verified"
>;

const NODE_W = 150;
const NODE_H = 58;
const PAD = 12;
/** Room right of the last column for the edges that wrap into the next band. */
const WRAP = 18;
/** Column and row pitch, and the gap between wrapped bands. */
const STEP_X = NODE_W + 40;
const STEP_Y = NODE_H + 14;
const BAND_GAP = 26;

interface Placed {
  peer: TreePeer;
  depth: number;
  slot: number;
  children: string[];
}

/** The server a peer hangs under, or undefined for a root or a peer outside the tree. */
export function treeParent(p: TreePeer): string | undefined {
  if (p.role !== "client") return undefined;
  if (p.state === "receiving") return p.server;
  if (p.verified || p.state === "verifying") return p.servedBy.at(-1);
  return undefined;
}

function roleRank(p: TreePeer): number {
  return p.role === "fake" ? 0 : p.role === "server" ? 1 : 2;
}

/** Lay out the tree: depth per node, and leaf slots across (parents centred over children). */
export function layoutTree(peers: TreePeer[]): { nodes: Map<string, Placed>; leaves: number } {
  const byId = new Map(peers.map((p) => [p.id, p]));
  const parent = new Map<string, string>();
  for (const p of peers) {
    const up = treeParent(p);
    if (up !== undefined && up !== p.id && byId.has(up)) parent.set(p.id, up);
  }
  const inTree = new Set<string>();
  for (const p of peers) {
    const show = parent.has(p.id) || (p.role !== "client" && p.state !== "left") ||
      (p.role === "client" && p.verified && p.state !== "left");
    if (!show) continue;
    // A parent is in the tree whenever its child is (even a server that has left).
    for (let id: string | undefined = p.id; id && !inTree.has(id); id = parent.get(id)) {
      inTree.add(id);
    }
  }
  const children = new Map<string, string[]>();
  for (const id of inTree) {
    const up = parent.get(id);
    if (up !== undefined) children.set(up, [...(children.get(up) ?? []), id]);
  }
  const order = (a: string, b: string) => {
    const pa = byId.get(a)!, pb = byId.get(b)!;
    return roleRank(pa) - roleRank(pb) || a.localeCompare(b, "en", { numeric: true });
  };
  const nodes = new Map<string, Placed>();
  let leaves = 0;
  const place = (id: string, depth: number): number => {
    const node: Placed = { peer: byId.get(id)!, depth, slot: 0, children: [] };
    nodes.set(id, node); // before the children: a cycle in old links ends here
    const slots: number[] = [];
    for (const k of (children.get(id) ?? []).sort(order)) {
      if (nodes.has(k)) continue;
      node.children.push(k);
      slots.push(place(k, depth + 1));
    }
    node.slot = slots.length ? (slots[0] + slots[slots.length - 1]) / 2 : leaves++;
    return node.slot;
  };
  const roots = [...inTree].filter((id) => !inTree.has(parent.get(id) ?? "")).sort(order);
  for (const id of roots) place(id, 0);
  // Whatever is left sits on a cycle of old links: start it as a root of its own.
  for (const id of [...inTree].sort(order)) if (!nodes.has(id)) place(id, 0);
  return { nodes, leaves };
}

function label(id: string): string {
  return id.length > 12 ? `${id.slice(0, 11)}…` : id;
}

function subtitle(p: TreePeer): string {
  if (p.state === "receiving") return `${Math.floor(p.progress * 100)}%`;
  return p.role === "client" ? p.state : p.role === "fake" ? "fake server" : "server";
}

/**
 * Depth runs left to right (a relay chain reads as a row); past `width` the tree wraps into
 * bands, like text, so every node keeps a readable size however deep the chain.
 */
export function renderTreeSvg(peers: TreePeer[], width = 720): string {
  const { nodes, leaves } = layoutTree(peers);
  if (nodes.size === 0) {
    return `<svg class="tree" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 40" ` +
      `width="400" height="40" role="img" aria-label="No servers yet">` +
      `<text x="0" y="28" class="tree-empty">No servers yet</text></svg>`;
  }
  const depth = Math.max(...[...nodes.values()].map((n) => n.depth)) + 1;
  const fit = Math.floor((width - 2 * PAD - NODE_W - WRAP) / STEP_X) + 1;
  const cols = Math.max(1, Math.min(depth, fit));
  const bandH = leaves * STEP_Y + BAND_GAP;
  const pos = (n: Placed) => ({
    x: PAD + (n.depth % cols) * STEP_X,
    y: PAD + Math.floor(n.depth / cols) * bandH + n.slot * STEP_Y,
  });
  const svgW = PAD * 2 + (cols - 1) * STEP_X + NODE_W + (depth > cols ? WRAP : 0);
  const svgH = PAD * 2 + Math.ceil(depth / cols) * bandH - BAND_GAP - (STEP_Y - NODE_H);
  const edges: string[] = [];
  const boxes: string[] = [];
  for (const n of nodes.values()) {
    const a = pos(n);
    for (const k of n.children) {
      const child = nodes.get(k)!;
      const b = pos(child);
      const [x1, y1, x2, y2] = [a.x + NODE_W, a.y + NODE_H / 2, b.x, b.y + NODE_H / 2];
      const bend = (x2 - x1) / 2;
      // Within a band a gentle S; into the next band, out right, back through the gap between
      // the bands and in from the left margin, past every node.
      const gap = PAD + (Math.floor(n.depth / cols) + 1) * bandH -
        (STEP_Y - NODE_H + BAND_GAP) / 2;
      const d = x2 > x1
        ? `M${x1} ${y1}C${x1 + bend} ${y1} ${x2 - bend} ${y2} ${x2} ${y2}`
        : `M${x1} ${y1}H${x1 + WRAP}V${gap}H${PAD / 2}V${y2}H${x2}`;
      const active = child.peer.state === "receiving" ? " active" : "";
      edges.push(`<path class="edge${active}" d="${d}"/>`);
    }
    const p = n.peer;
    const bar = p.state === "receiving"
      ? `<rect class="node-bar" x="${a.x + 6}" y="${a.y + NODE_H - 9}" width="${
        Math.round((NODE_W - 12) * p.progress)
      }" height="5" rx="2"/>`
      : "";
    boxes.push(
      `<g class="node st-${p.state}"><title>${escapeHtml(p.id)}: ${p.state}</title>` +
        `<rect x="${a.x}" y="${a.y}" width="${NODE_W}" height="${NODE_H}" rx="8"/>` +
        `<text x="${a.x + NODE_W / 2}" y="${a.y + 24}" class="node-id">${
          escapeHtml(label(p.id))
        }</text>` +
        `<text x="${a.x + NODE_W / 2}" y="${a.y + 44}" class="node-sub">${subtitle(p)}</text>` +
        `${bar}</g>`,
    );
  }
  return `<svg class="tree" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${svgW} ${svgH}" ` +
    `width="${svgW}" height="${svgH}" role="img" aria-label="Who serves whom">` +
    `${edges.join("")}${boxes.join("")}</svg>`;
}
