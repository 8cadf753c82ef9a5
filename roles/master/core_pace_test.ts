// The master tells the room how often to report: the half second in a welcome of a small room,
// and once the room grows past a step every PC hears the longer interval ("pace"), the newcomer
// in its welcome; a room that shrinks keeps it (the stall rule allows for every PC's interval).
import assert from "node:assert/strict";
import type { MasterMessage } from "../protocol/mod.ts";
import { coreHarness } from "./testkit.ts";

const pcName = (i: number) => `pc${String(i).padStart(4, "0")}`;
const paces = (msgs: MasterMessage[]) =>
  msgs.flatMap((m) =>
    m.type === "pace"
      ? [`pace ${m.progressMs}`]
      : m.type === "welcome"
      ? [`welcome ${m.progressMs}`]
      : []
  );

Deno.test("master: a room past 500 PCs reports every second; every PC hears it once", () => {
  const h = coreHarness({ mode: "relay", linger: 2 });
  for (let i = 1; i <= 500; i++) h.hello(pcName(i), "client");
  assert.deepEqual(paces(h.to(pcName(1))), ["welcome 500"]);
  assert.equal(h.core.reportMs, 500);
  h.hello(pcName(501), "client");
  assert.equal(h.core.reportMs, 1000);
  assert.deepEqual(paces(h.to(pcName(1))), ["welcome 500", "pace 1000"]);
  assert.deepEqual(paces(h.to(pcName(500))), ["welcome 500", "pace 1000"]);
  assert.deepEqual(paces(h.to(pcName(501))), ["welcome 1000"], "the newcomer: in its welcome");
  const told = h.sent.filter((s) => s.msg.type === "pace").length;
  assert.equal(told, 500);
  assert.ok(h.core.events.some((e) => e.event === "pace" && e.fields.progressMs === 1000));
  // The room shrinks and grows back: the interval stays, nobody is told again.
  for (let i = 1; i <= 300; i++) h.drop(pcName(i));
  for (let i = 1; i <= 300; i++) h.open(pcName(i)), h.hello(pcName(i), "client");
  assert.equal(h.core.reportMs, 1000);
  assert.equal(h.sent.filter((s) => s.msg.type === "pace").length, told);
  assert.deepEqual(paces(h.to(pcName(1))).at(-1), "welcome 1000");
});
