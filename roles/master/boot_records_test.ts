import assert from "node:assert/strict";
import { BootRecords } from "./boot_records.ts";

Deno.test("boot records: found by MAC and by address, the newest per address wins", () => {
  const r = new BootRecords(10);
  r.record("aa", "10.0.0.1", 1);
  r.record("bb", "10.0.0.2", 2);
  assert.equal(r.byMac("aa")?.address, "10.0.0.1");
  assert.equal(r.byAddress("10.0.0.2")?.mac, "bb");
  r.record("aa", "10.0.0.3", 3); // the PC moved
  assert.equal(r.byAddress("10.0.0.1"), undefined);
  assert.equal(r.byAddress("10.0.0.3")?.mac, "aa");
  // Another PC now holds that address: the one before is forgotten, and said so.
  assert.deepEqual(r.record("cc", "10.0.0.3", 4), ["aa"]);
  assert.equal(r.byMac("aa"), undefined);
  assert.equal(r.size, 2);
});

Deno.test("boot records: bounded, the oldest is evicted", () => {
  const r = new BootRecords(3);
  const evicted: string[][] = [];
  for (let i = 0; i < 5; i++) evicted.push(r.record(`m${i}`, `10.0.0.${i}`, i));
  assert.deepEqual(evicted, [[], [], [], ["m0"], ["m1"]]);
  assert.equal(r.size, 3);
  assert.equal(r.byMac("m0"), undefined);
  assert.equal(r.byAddress("10.0.0.0"), undefined);
  assert.equal(r.byMac("m4")?.address, "10.0.0.4");
});
