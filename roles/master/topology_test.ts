import assert from "node:assert/strict";
import { parseTopology } from "./topology.ts";

Deno.test("topology: MACs, addresses, CIDR and first-last ranges name each PC's switch", () => {
  const t = parseTopology(
    [
      "# room 2.14: two switches, the teacher's PC on the back one",
      "front  10.0.0.0/26",
      "back   10.0.0.64-10.0.0.127   # the back rows",
      "back   52:54:00:12:34:56",
      "",
      "annex  10.0.1.7",
    ].join("\n"),
    "room.topology",
  );
  assert.deepEqual(t.switches, ["front", "back", "annex"]);
  const rows = [
    [{ address: "10.0.0.1" }, "front"],
    [{ address: "10.0.0.63" }, "front"],
    [{ address: "10.0.0.64" }, "back"],
    [{ address: "::ffff:10.0.0.127" }, "back"],
    [{ address: "10.0.0.128" }, undefined],
    [{ address: "10.0.1.7" }, "annex"],
    // A MAC beats the range its address is in.
    [{ address: "10.0.0.5", mac: "52-54-00-12-34-56" }, "back"],
    [{ mac: "52:54:00:12:34:57" }, undefined],
    [{ address: "fe80::1" }, undefined],
  ] as const;
  for (const [pc, sw] of rows) assert.equal(t.switchOf(pc), sw, JSON.stringify(pc));
});

Deno.test("topology: every bad rule names the file, the line and the value", () => {
  const bad: [string, string][] = [
    ["front", 'Invalid topology rule "front" in "t" line 1: expected "SWITCH PCS"'],
    [
      "\nfront 10.0.0.0/26 extra",
      'Invalid topology rule "front 10.0.0.0/26 extra" in "t" line 2: expected "SWITCH PCS"',
    ],
    [
      "fr/nt 10.0.0.1",
      'Invalid switch name "fr/nt" in "t" line 1: use letters, digits and . _ : - (1..64)',
    ],
    [
      "front 10.0.0.300",
      'Invalid PCs "10.0.0.300" in "t" line 1: expected a MAC, an IPv4 address, A.B.C.D/N or A-B',
    ],
    [
      "front 10.0.0.9-10.0.0.2",
      'Invalid PCs "10.0.0.9-10.0.0.2" in "t" line 1: expected a MAC, an IPv4 address, A.B.C.D/N or A-B',
    ],
    [
      "front 10.0.0.0/33",
      'Invalid PCs "10.0.0.0/33" in "t" line 1: expected a MAC, an IPv4 address, A.B.C.D/N or A-B',
    ],
  ];
  for (const [text, message] of bad) {
    assert.throws(() => parseTopology(text, "t"), { name: "SyntaxError", message });
  }
});
