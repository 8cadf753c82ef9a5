import assert from "node:assert/strict";
import { formatBytes, formatDuration, parseDuration, parseRate, parseSize } from "./units.ts";

Deno.test("parseSize reads bytes, binary and decimal units", () => {
  assert.equal(parseSize("4096"), 4096);
  assert.equal(parseSize("1M"), 1048576);
  assert.equal(parseSize("1MiB"), 1048576);
  assert.equal(parseSize("6GB"), 6e9);
  assert.equal(parseSize("1.5k"), 1536);
  assert.throws(() => parseSize("12 parsecs", "chunk size"), /Invalid chunk size "12 parsecs"/);
  assert.throws(() => parseSize("-1"), /Invalid size "-1"/);
});

Deno.test("parseDuration reads seconds, minutes and hours", () => {
  assert.equal(parseDuration("10"), 10);
  assert.equal(parseDuration("20m"), 1200);
  assert.equal(parseDuration("250ms"), 0.25);
  assert.throws(() => parseDuration("soon", "linger"), /Invalid linger "soon"/);
});

Deno.test("parseRate reads bits and bytes per second", () => {
  assert.equal(parseRate("100mbit"), 12.5e6);
  assert.equal(parseRate("1gbit"), 125e6);
  assert.equal(parseRate("12MB/s"), 12e6);
  assert.throws(() => parseRate("fast"), /Invalid rate "fast"/);
});

Deno.test("formatters", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1048576), "1.0 MiB");
  assert.equal(formatDuration(5), "5.0s");
  assert.equal(formatDuration(125), "2m05s");
  assert.equal(formatDuration(3725), "1h02m");
});
