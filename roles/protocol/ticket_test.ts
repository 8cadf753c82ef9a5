import assert from "node:assert/strict";
import { hostAddress, issueTicket, ticketValid } from "./ticket.ts";

const KEY = "11".repeat(32);

Deno.test("a ticket is good for its server's key and its client's address only", () => {
  const t = issueTicket(KEY, "ab".repeat(16), "10.0.0.5");
  assert.match(t, /^[0-9a-f]{32}\.[0-9a-f]{64}$/);
  assert.equal(ticketValid(KEY, t, "10.0.0.5"), true);
  assert.equal(ticketValid(KEY, t, "::ffff:10.0.0.5"), true, "the same host, dual-stack");
  assert.equal(ticketValid(KEY, t, "10.0.0.6"), false, "another host");
  assert.equal(ticketValid("22".repeat(32), t, "10.0.0.5"), false, "another server");
  assert.equal(ticketValid(KEY, t.slice(0, -1) + (t.endsWith("0") ? "1" : "0"), "10.0.0.5"), false);
  for (
    const junk of ["", ".", "x".repeat(300), "abcdefgh.zz", `${"ab".repeat(16)}.${"0".repeat(63)}`]
  ) {
    assert.equal(ticketValid(KEY, junk, "10.0.0.5"), false, junk);
  }
});

Deno.test("hostAddress folds IPv4-mapped IPv6 and brackets", () => {
  assert.equal(hostAddress("::FFFF:10.1.2.3"), "10.1.2.3");
  assert.equal(hostAddress("[fe80::1]"), "fe80::1");
  assert.equal(hostAddress("10.1.2.3"), "10.1.2.3");
});
