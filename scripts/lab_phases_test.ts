import assert from "node:assert/strict";
import { parseMoments, phaseTable } from "./lab_phases.ts";

const master = [
  "2026-12-02T05:29:42.590Z master.join peer=pc1 role=client address=10.0.0.3",
  "2026-12-02T05:29:43.000Z master.join peer=fake role=fake address=10.0.0.2",
  "2026-12-02T05:29:43.010Z master.assign server=fake clients=pc1 partial=false",
  "2026-12-02T05:29:43.020Z master.assign server=pc1 clients=pc2 partial=false",
  "2026-12-02T05:29:49.000Z master.verified peer=pc1 seconds=6 readback=0 servedBy=fake",
  "2026-12-02T05:29:49.200Z master.verified peer=pc2 seconds=6.2 readback=0 servedBy=pc1",
].join("\n");
const pc = (name: string, first: string, last: string) =>
  [
    `2026-12-02T05:29:42.000Z client[${name}].target disk=/d reason=x`,
    `2026-12-02T05:29:42.400Z client[${name}].probe bytes=1048576 seconds=0.1 rate=1`,
    `2026-12-02T05:29:42.500Z client[${name}].welcome id=${name} mode=relay address=a`,
    `2026-12-02T05:29:43.030Z client[${name}].fetch.start peer=${name} server=s missing=64`,
    `2026-12-02T05:29:${first}Z client[${name}].fetch.first peer=${name} server=s index=0`,
    "Cascade: a console line without a time",
    `2026-12-02T05:29:${last}Z client[${name}].fetch.done peer=${name} server=s bytes=1`,
    `2026-12-02T05:29:${last}Z client[${name}].readback.done peer=${name} bad=0`,
  ].join("\n");

Deno.test("lab phases: each PC's moments from the fake server's join, and the table", () => {
  const runs = [
    parseMoments(
      master,
      new Map([["pc1", pc("pc1", "43.200", "48.900")], ["pc2", pc("pc2", "43.300", "49.100")]]),
    ),
  ];
  const pc2 = runs[0].find((p) => p.name === "pc2")!;
  assert.deepEqual(
    Object.fromEntries(
      Object.entries(pc2).map(([k, v]) => [k, typeof v === "number" ? +v.toFixed(3) : v]),
    ),
    {
      name: "pc2",
      start: -1,
      probe: -0.6,
      hello: -0.5,
      join: 0,
      assigned: 0.02,
      first: 0.3,
      last: 6.1,
      readback: 6.1,
      verified: 6.2,
    },
  );
  assert.equal(
    phaseTable(runs),
    [
      "phase                          first PC (s)  median PC (s)  last PC (s)",
      "-----------------------------  ------------  -------------  -----------",
      "client up -> probe done                0.40           0.40         0.40",
      "probe -> welcome                       0.10           0.10         0.10",
      "fake join -> assigned                  0.01           0.01         0.02",
      "assigned -> first chunk                0.19           0.24         0.28",
      "first -> last chunk                    5.70           5.75         5.80",
      "last chunk -> read-back done           0.00           0.00         0.00",
      "read-back -> verified (proof)          0.10           0.10         0.10",
      "fake join -> verified                  6.00           6.10         6.20",
    ].join("\n"),
  );
});
