// The master fitting the room: probes and switches from the hello (or the topology file) reach
// the scheduler, progress reports measure the hops, a demotion moves the downstream with a fresh
// ticket at once. (The rules themselves: scheduler_test.ts.)
import assert from "node:assert/strict";
import type { AssignMessage } from "../protocol/mod.ts";
import { ticketValid } from "../protocol/mod.ts";
import { coreHarness } from "./testkit.ts";
import { parseTopology } from "./topology.ts";

const MB = 1e6;
const relay = () => coreHarness({ mode: "relay", linger: 2, totalChunks: 64 });
const assigns = (h: ReturnType<typeof coreHarness>, name: string) =>
  h.to(name).filter((m): m is AssignMessage => m.type === "assign").map((m) => m.server.id);

Deno.test("master: a PC whose probe is slow is served last, under the chain's tail", () => {
  const h = relay();
  const probes: Record<string, number> = { pc1: 11e6, pc2: 1.1e6, pc3: 11.2e6, pc4: 11e6 };
  for (const [n, probe] of Object.entries(probes)) {
    h.open(n, `10.0.0.${n.slice(2)}`);
    h.hello(n, "client", { probe });
  }
  h.open("fake", "10.0.0.9");
  h.hello("fake", "fake", { capacity: 1 });
  assert.deepEqual(["pc1", "pc2", "pc3", "pc4"].map((n) => assigns(h, n)), [
    ["fake"],
    ["pc4"],
    ["pc1"],
    ["pc3"],
  ]);
  assert.equal(h.core.peers.get("pc2")!.demoted, "probe");
  assert.equal(h.core.peers.get("pc2")!.probe, 1.1e6);
  assert.ok(h.core.events.some((e) => e.event === "demoted" && e.fields.peer === "pc2"));
});

Deno.test("master: progress reports find a stalled relay; its downstream moves up with a ticket", () => {
  const h = relay();
  for (const n of ["pc1", "pc2", "pc3"]) {
    h.open(n, `10.0.0.${n.slice(2)}`);
    h.hello(n, "client");
  }
  h.open("fake", "10.0.0.9");
  h.hello("fake", "fake", { capacity: 1 });
  assert.deepEqual(["pc1", "pc2", "pc3"].map((n) => assigns(h, n)), [["fake"], ["pc1"], ["pc2"]]);
  const report = (n: string, bytes: number) =>
    h.say(n, { type: "progress", held: Math.floor(bytes / MB), bytes, rate: 0 });
  for (let t = 1; t <= 4; t++) {
    h.advance(0.5);
    report("pc1", 6 * MB * t);
    report("pc2", 6 * MB * t);
    report("pc3", 6 * MB * t);
  }
  // pc2 stops; pc1 goes on; pc3 gets nothing more either.
  for (let t = 5; t <= 8; t++) {
    h.advance(0.5);
    report("pc1", 6 * MB * t);
    report("pc3", 24 * MB);
  }
  assert.deepEqual(assigns(h, "pc3"), ["pc2", "pc1"]);
  const moved = h.to("pc3").filter((m) => m.type === "assign").at(-1) as AssignMessage;
  const pc1Key = (h.to("pc1")[0] as { ticketKey: string }).ticketKey;
  assert.equal(ticketValid(pc1Key, moved.ticket, "10.0.0.3"), true);
  assert.deepEqual(h.to("pc1").at(-1), { type: "serve", clients: ["pc3"] });
  assert.deepEqual(assigns(h, "pc2"), ["pc1", "pc3"], "pc2 waits under the new tail");
  assert.equal(h.core.peers.get("pc2")!.demoted, "stalled");
  assert.deepEqual(h.core.peers.get("pc3")!.servedBy, ["pc2", "pc1"]);
});

Deno.test("master: the topology file names the switches; a chain keeps to one switch", () => {
  const topology = parseTopology("sw1 10.0.0.0/28\nsw2 10.0.0.16/28\n", "t");
  const h = coreHarness({ mode: "relay", linger: 2, totalChunks: 64, topology });
  const hosts = [17, 2, 18, 3];
  for (const ip of hosts) {
    h.open(`pc${ip}`, `10.0.0.${ip}`);
    h.hello(`pc${ip}`, "client");
  }
  h.open("fake", "10.0.0.9");
  h.hello("fake", "fake", { capacity: 1 });
  // A PC that heard its switch's LLDP says so itself, and that wins.
  assert.equal(h.core.peers.get("pc17")!.switch, "sw2");
  assert.deepEqual(hosts.map((ip) => assigns(h, `pc${ip}`)[0]), ["pc3", "fake", "pc17", "pc2"]);
  h.open("pc5", "10.0.0.5");
  h.hello("pc5", "client", { switch: "lab-sw9", switchPort: "7" });
  assert.deepEqual(
    [h.core.peers.get("pc5")!.switch, h.core.peers.get("pc5")!.switchPort],
    ["lab-sw9", "7"],
  );
});

Deno.test("master: a source that says its port rate feeds as many chains as that carries", () => {
  const h = relay();
  for (let i = 1; i <= 4; i++) {
    h.open(`pc${i}`, `10.0.0.${i}`);
    h.hello(`pc${i}`, "client", { probe: 11.4 * MB });
  }
  h.open("fake", "10.0.0.9");
  h.hello("fake", "fake", { capacity: 8, portRate: 25 * MB });
  assert.deepEqual(h.to("fake").at(-1), { type: "serve", clients: ["pc1", "pc2"] });
  // Without a port rate the fan-out caps it, as before.
  const t = relay();
  t.open("pc1", "10.0.0.1");
  t.hello("pc1", "client", { probe: 11.4 * MB });
  t.open("pc2", "10.0.0.2");
  t.hello("pc2", "client", { probe: 11.4 * MB });
  t.open("fake", "10.0.0.9");
  t.hello("fake", "fake", { capacity: 8 });
  assert.deepEqual(t.to("fake").at(-1), { type: "serve", clients: ["pc1"] });
});
