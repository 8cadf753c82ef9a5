import assert from "node:assert/strict";
import { normalizeMac, parseMac } from "./mac.ts";

Deno.test("normalizeMac reads colons, dashes, no separator and any case into one form", () => {
  for (
    const text of ["52:54:00:ab:cd:ef", "52-54-00-AB-cd-ef", "525400ABCDEF", "52:54:00:AB:CD:EF"]
  ) {
    assert.equal(normalizeMac(text), "52:54:00:ab:cd:ef", text);
  }
});

Deno.test("normalizeMac refuses what is not one MAC", () => {
  for (
    const text of [
      "",
      "52:54:00:ab:cd",
      "52:54:00:ab:cd:ef:01",
      "52:54-00:ab:cd:ef",
      "52-54:00-ab-cd-ef",
      "zz-54-00-ab-cd-ef",
      "52:54:00:ab:cd:eg",
      "5254.00ab.cdef",
      " 52:54:00:ab:cd:ef",
      "all",
    ]
  ) {
    assert.equal(normalizeMac(text), null, text);
  }
});

Deno.test("parseMac returns the one form or throws a TypeError naming the thing and value", () => {
  assert.equal(parseMac("52-54-00-12-34-56"), "52:54:00:12:34:56");
  assert.throws(
    () => parseMac("nope", "--mac"),
    new TypeError('Invalid --mac "nope": expected six hex pairs like 52:54:00:12:34:56'),
  );
});
