import assert from "node:assert/strict";
import { peSignatureSize } from "./pe_signature.ts";
import { fakePe } from "./pe_testkit.ts";

Deno.test("peSignatureSize reads the certificate table's size", () => {
  assert.equal(peSignatureSize(fakePe(0)), 0);
  assert.equal(peSignatureSize(fakePe(2344)), 2344);
  assert.throws(
    () => peSignatureSize(new Uint8Array(100), "vmlinuz"),
    /Cannot read "vmlinuz" as a PE file: no MZ header/,
  );
});
