import assert from "node:assert/strict";
import { layoutTree, renderTreeSvg, treeParent, type TreePeer } from "./tree_svg.ts";

function peer(
  id: string,
  role: TreePeer["role"],
  state: TreePeer["state"],
  o: Partial<TreePeer> = {},
): TreePeer {
  return { id, role, state, servedBy: [], progress: 0, verified: false, ...o };
}

/** A relay chain fake -> pc1 -> ... -> pcN, everyone receiving at 25 %. */
function chain(n: number): TreePeer[] {
  return [
    peer("fake", "fake", "serving"),
    ...Array.from({ length: n }, (_, i) => {
      const up = i ? `pc${i}` : "fake";
      return peer(`pc${i + 1}`, "client", "receiving", {
        server: up,
        servedBy: [up],
        progress: 0.25,
      });
    }),
  ];
}

Deno.test("tree: whole SVG of a fake server with one PC receiving and one imaged", () => {
  const svg = renderTreeSvg([
    peer("fake", "fake", "serving"),
    peer("pc-a", "client", "receiving", { server: "fake", servedBy: ["fake"], progress: 0.5 }),
    peer("pc-b", "client", "serving", { servedBy: ["fake"], progress: 1, verified: true }),
    peer("pc-w", "client", "waiting"),
  ]);
  assert.equal(
    svg,
    '<svg class="tree" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 364 154" width="364" ' +
      'height="154" role="img" aria-label="Who serves whom">' +
      '<path class="edge active" d="M162 77C182 77 182 41 202 41"/>' +
      '<path class="edge" d="M162 77C182 77 182 113 202 113"/>' +
      '<g class="node st-serving"><title>fake: serving</title>' +
      '<rect x="12" y="48" width="150" height="58" rx="8"/>' +
      '<text x="87" y="72" class="node-id">fake</text>' +
      '<text x="87" y="92" class="node-sub">fake server</text></g>' +
      '<g class="node st-receiving"><title>pc-a: receiving</title>' +
      '<rect x="202" y="12" width="150" height="58" rx="8"/>' +
      '<text x="277" y="36" class="node-id">pc-a</text>' +
      '<text x="277" y="56" class="node-sub">50%</text>' +
      '<rect class="node-bar" x="208" y="61" width="69" height="5" rx="2"/></g>' +
      '<g class="node st-serving"><title>pc-b: serving</title>' +
      '<rect x="202" y="84" width="150" height="58" rx="8"/>' +
      '<text x="277" y="108" class="node-id">pc-b</text>' +
      '<text x="277" y="128" class="node-sub">serving</text></g></svg>',
  );
});

Deno.test("tree: a deep chain wraps into bands, the wrapping edge runs through the gap", () => {
  const svg = renderTreeSvg(chain(5), 600);
  // 600 units hold 3 columns: fake pc1 pc2 / pc3 pc4 pc5.
  const { nodes } = layoutTree(chain(5));
  assert.deepEqual([...nodes.values()].map((n) => [n.peer.id, n.depth, n.slot]), [
    ["fake", 0, 0],
    ["pc1", 1, 0],
    ["pc2", 2, 0],
    ["pc3", 3, 0],
    ["pc4", 4, 0],
    ["pc5", 5, 0],
  ]);
  const paths = [...svg.matchAll(/<path class="edge active" d="([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(paths, [
    "M162 41C182 41 182 41 202 41",
    "M352 41C372 41 372 41 392 41",
    "M542 41H560V90H6V139H12", // out right, back left through the gap, into pc3
    "M162 139C182 139 182 139 202 139",
    "M352 139C372 139 372 139 392 139",
  ]);
  assert.match(svg, /viewBox="0 0 572 180"/);
  assert.match(svg, /<text x="87" y="134" class="node-id">pc3<\/text>/);
});

Deno.test("tree: parents are centred over their children; waiting and failed PCs stay out", () => {
  const { nodes, leaves } = layoutTree([
    peer("srv", "server", "serving"),
    peer("a", "client", "receiving", { server: "srv", servedBy: ["srv"] }),
    peer("b", "client", "verifying", { servedBy: ["srv"] }),
    peer("c", "client", "receiving", { server: "srv", servedBy: ["srv"] }),
    peer("gone", "client", "left", { servedBy: ["srv"] }),
    peer("idle", "client", "waiting", { servedBy: ["srv"] }),
  ]);
  assert.equal(leaves, 3);
  assert.deepEqual([...nodes.keys()], ["srv", "a", "b", "c"]);
  assert.equal(nodes.get("srv")!.slot, 1);
  assert.deepEqual(nodes.get("srv")!.children, ["a", "b", "c"]);
});

Deno.test("tree: old links that form a cycle still place every node once", () => {
  // x last came from y, and y from x (each re-served after the other left): no root at all.
  const peers = [
    peer("x", "client", "serving", { servedBy: ["y"], verified: true }),
    peer("y", "client", "serving", { servedBy: ["x"], verified: true }),
  ];
  assert.equal(treeParent(peers[0]), "y");
  const { nodes } = layoutTree(peers);
  assert.deepEqual([...nodes.values()].map((n) => [n.peer.id, n.depth]), [["x", 0], ["y", 1]]);
  assert.equal(renderTreeSvg(peers).match(/<g class="node/g)?.length, 2);
});

Deno.test("tree: no servers yet", () => {
  assert.equal(
    renderTreeSvg([peer("pc", "client", "waiting")]),
    '<svg class="tree" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 40" width="400" ' +
      'height="40" role="img" aria-label="No servers yet">' +
      '<text x="0" y="28" class="tree-empty">No servers yet</text></svg>',
  );
});

Deno.test("tree: long ids are clipped in the box and kept whole in the tooltip", () => {
  const svg = renderTreeSvg([peer("lab3-teacher-desk", "server", "serving")]);
  assert.match(svg, /<title>lab3-teacher-desk: serving<\/title>/);
  assert.match(svg, /class="node-id">lab3-teache…<\/text>/);
});
