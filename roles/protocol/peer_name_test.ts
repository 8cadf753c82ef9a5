import assert from "node:assert/strict";
import { isPeerName, PEER_NAME_RULE } from "./peer_name.ts";

Deno.test("isPeerName takes hostnames and MACs, refuses spaces, quotes, slashes and length", () => {
  for (const name of ["pc-01", "lab3.example", "52:54:00:ab:cd:ef", "a_b", "x".repeat(64)]) {
    assert.equal(isPeerName(name), true, name);
  }
  for (const name of ["", "pc 01", 'pc"1', "a/b", "pc=1", "x".repeat(65), "pc\n1"]) {
    assert.equal(isPeerName(name), false, name);
  }
  assert.equal(PEER_NAME_RULE, "1..64 letters, digits and . _ : -");
});
