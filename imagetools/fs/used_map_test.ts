import assert from "node:assert/strict";
import { freeBytes, markUsed, newUsedMap, usedUnits, whollyFree, zeroFree } from "./used_map.ts";

Deno.test("zeroFree zeroes exactly the free units inside the buffer, parts of units included", () => {
  // 20 units of 4 bytes from byte 8; units 0-1, 9 and 12-19 used.
  const map = newUsedMap(8, 4, 20);
  markUsed(map, 0, 2);
  markUsed(map, 9);
  markUsed(map, 12, 8);
  assert.equal(usedUnits(map), 11);
  assert.equal(freeBytes(map), 9 * 4);
  const disk = new Uint8Array(100).fill(0xaa);
  // The buffer holds disk bytes 10..70: it starts inside unit 0 and ends inside unit 15.
  const buf = disk.subarray(10, 70);
  assert.equal(zeroFree(map, 10, buf), 7 * 4 + 2 * 4);
  const expected = new Uint8Array(100).fill(0xaa);
  expected.fill(0, 8 + 2 * 4, 8 + 9 * 4); // units 2-8
  expected.fill(0, 8 + 10 * 4, 8 + 12 * 4); // units 10-11
  assert.deepEqual(disk, expected);
  assert.equal(whollyFree(map, 16, 44), true);
  assert.equal(whollyFree(map, 16, 48), false);
  assert.equal(whollyFree(map, 0, 12), false, "bytes before the map are never free");
});

Deno.test("markUsed fills whole bytes and stops at the map's end", () => {
  const map = newUsedMap(0, 512, 21);
  markUsed(map, 3, 100);
  assert.deepEqual([...map.used], [0xf8, 0xff, 0x1f]);
  assert.equal(usedUnits(map), 18);
});
