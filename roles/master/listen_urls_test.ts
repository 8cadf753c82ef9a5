import assert from "node:assert/strict";
import { lanUrls } from "./listen_urls.ts";

Deno.test("lanUrls lists each LAN IPv4 address of a wildcard bind, once, and nothing else", () => {
  const interfaces = [
    { family: "IPv4", address: "127.0.0.1" },
    { family: "IPv6", address: "::1" },
    { family: "IPv4", address: "10.0.0.1" },
    { family: "IPv6", address: "fe80::1" },
    { family: "IPv4", address: "192.168.5.20" },
    { family: "IPv4", address: "10.0.0.1" },
  ];
  assert.deepEqual(lanUrls("0.0.0.0", 8080, interfaces), [
    "http://10.0.0.1:8080",
    "http://192.168.5.20:8080",
  ]);
  assert.deepEqual(lanUrls("10.0.0.1", 8080, interfaces), []);
  assert.deepEqual(lanUrls("0.0.0.0", 8080, []), []);
});
