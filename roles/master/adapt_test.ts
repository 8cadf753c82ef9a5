// The stall rule alone (pure): the head of a stall is demoted, never those below it, and a
// silence the whole room shares (late reports) demotes nobody.
import assert from "node:assert/strict";
import { DEFAULT_ADAPT, hopDemotion } from "./adapt.ts";
import { HopMeter } from "./hop_meter.ts";

const MB = 1e6;
/** fake -> a -> x -> d, each at 12 MB/s in half-second reports up to `until`. */
function chain(until: number) {
  const meter = new HopMeter(DEFAULT_ADAPT.window);
  const upstream = new Map([["a", "fake"], ["x", "a"], ["d", "x"]]);
  for (const id of upstream.keys()) meter.start(id, 0);
  for (let t = 0.5; t <= until; t += 0.5) {
    for (const id of upstream.keys()) meter.report(id, 12 * MB * t, t);
  }
  const view = (at: number) => ({
    at,
    slowSince: new Map<string, number>(),
    seen: 4,
    inRun: 0,
    upstream,
    leaves: new Set<string>(),
    blamed: new Set<string>(),
    meter,
  });
  return { meter, view };
}

Deno.test("stall rule: the stalled relay is demoted, the PC below it (stopped too) is not", () => {
  const { meter, view } = chain(2);
  // x stops at 2 s; a goes on; d, below x, reports that it got nothing more either.
  for (let t = 2.5; t <= 3.5; t += 0.5) {
    meter.report("a", 12 * MB * t, t);
    meter.report("d", 24 * MB, t);
  }
  assert.deepEqual(hopDemotion(view(3.5), DEFAULT_ADAPT), {
    id: "x",
    reason: "stalled",
    detail: 'no byte for 1.50 s while "a" moved',
    rate: 0,
  });
  // Had x reported its growth, nobody would be: d's upstream did not move without it.
  meter.report("x", 30 * MB, 3.5);
  assert.equal(hopDemotion(view(3.5), DEFAULT_ADAPT), null);
});

Deno.test("stall rule: reports of the whole room late at once demote nobody", () => {
  const { meter, view } = chain(2);
  // a's report at 2.25 s (its phase) shows growth, then nothing comes from anyone for 2.2 s
  // (a busy master, or the emulated PCs' thread): x last reported at 2 s.
  meter.report("a", 27 * MB, 2.25);
  assert.equal(hopDemotion(view(3.5), DEFAULT_ADAPT), null);
  // The late reports arrive, a's first: x, 2.6 s silent, is still not stalled, a was silent too.
  meter.report("a", 54 * MB, 4.6);
  assert.equal(hopDemotion(view(4.6), DEFAULT_ADAPT), null);
  // Then x says it got nothing all that while, and a keeps reporting: x's silence counts from
  // 4.6 s, when the room was heard again, so it is x from 6.1 s (a grew at 5.1 s).
  meter.report("x", 24 * MB, 4.65);
  for (const t of [5.1, 5.6]) meter.report("a", 54 * MB + 12 * MB * (t - 4.6), t);
  assert.equal(hopDemotion(view(5.6), DEFAULT_ADAPT), null);
  meter.report("x", 24 * MB, 5.65);
  meter.report("a", 66 * MB, 6.1);
  assert.deepEqual(hopDemotion(view(6.1), DEFAULT_ADAPT), {
    id: "x",
    reason: "stalled",
    detail: 'no byte for 4.10 s while "a" moved',
    rate: 0,
  });
});

Deno.test("stall rule: below a PC just moved, silence counts from the move", () => {
  // fake -> a -> x -> d -> f -> e: x stops at 2 s and is demoted, d is moved to a at 3 s. f got
  // bytes x had in flight and reported them at 2.5 s, after e's last growth (2 s); then
  // nothing comes down until the move.
  const meter = new HopMeter(DEFAULT_ADAPT.window);
  const upstream = new Map([["a", "fake"], ["x", "a"], ["d", "x"], ["f", "d"], ["e", "f"]]);
  for (const id of upstream.keys()) meter.start(id, 0);
  for (let t = 0.5; t <= 2; t += 0.5) {
    for (const id of upstream.keys()) meter.report(id, 12 * MB * t, t);
  }
  for (const t of [2.5, 3]) {
    for (const id of ["d", "f", "e"]) meter.report(id, id === "e" ? 24 * MB : 25 * MB, t);
  }
  upstream.delete("x");
  upstream.set("d", "a");
  meter.start("d", 3);
  const view = (at: number) => ({
    at,
    slowSince: new Map<string, number>(),
    seen: 8,
    inRun: 1,
    upstream,
    leaves: new Set<string>(),
    blamed: new Set<string>(["x"]),
    meter,
  });
  // d and f move again from 3.2 s; e waits for the bytes to come down: not stalled, though f
  // grew (at 2.5 s) more than a second after e last did.
  for (const t of [3.5, 4]) {
    for (const id of ["d", "f"]) meter.report(id, 25 * MB + 12 * MB * (t - 3.2), t);
    meter.report("e", 24 * MB, t);
  }
  assert.equal(hopDemotion(view(4), DEFAULT_ADAPT), null);
  // Still nothing for e a second after f moved on: e is stalled after all.
  for (const id of ["d", "f"]) meter.report(id, 25 * MB + 12 * MB * 1.3, 4.5);
  meter.report("e", 24 * MB, 4.5);
  assert.deepEqual(hopDemotion(view(4.5), DEFAULT_ADAPT), {
    id: "e",
    reason: "stalled",
    detail: 'no byte for 1.50 s while "f" moved',
    rate: 0,
  });
});
