import assert from "node:assert/strict";
import { parsePeerMessage, ProtocolError } from "./control_parse.ts";

const base = {
  type: "hello",
  version: 1,
  role: "client",
  name: "pc-1",
  imageId: "a".repeat(64),
  capacity: 1,
  held: 0,
  complete: false,
};

Deno.test("hello: the switch and port LLDP named, the probe rate and a source's port rate", () => {
  const extra = { switch: "lab-sw2", switchPort: "port 7", probe: 11.4e6, portRate: 125e6 };
  assert.deepEqual(parsePeerMessage(JSON.stringify({ ...base, ...extra })), { ...base, ...extra });
  assert.deepEqual(parsePeerMessage(JSON.stringify(base)), base);
  const bad: [Record<string, unknown>, string][] = [
    [{ switch: "" }, 'field "switch" ("") must be a string of 1..128 characters'],
    [{ probe: 0 }, 'field "probe" (0) must be bytes/s > 0 and <= 1e12'],
    [{ portRate: -1 }, 'field "portRate" (-1) must be a number >= 0'],
  ];
  for (const [fields, message] of bad) {
    assert.throws(
      () => parsePeerMessage(JSON.stringify({ ...base, ...fields })),
      (e: unknown) => e instanceof ProtocolError && (e as Error).message.endsWith(message),
    );
  }
});

Deno.test("hello: a MAC is stored in the one form netboot/mac.ts gives; a bad MAC or name is refused", () => {
  const hello = parsePeerMessage(JSON.stringify({ ...base, mac: "52-54-00-AB-CD-EF" }));
  assert.equal(hello.type === "hello" && hello.mac, "52:54:00:ab:cd:ef");
  const bad: [Record<string, unknown>, string][] = [
    [{ mac: "52:54-00:ab:cd:ef" }, 'field "mac" ("52:54-00:ab:cd:ef") is not a MAC'],
    [{ name: "pc 1" }, 'field "name" ("pc 1") must be 1..64 letters, digits and . _ : -'],
  ];
  for (const [fields, message] of bad) {
    assert.throws(
      () => parsePeerMessage(JSON.stringify({ ...base, ...fields })),
      (e: unknown) => e instanceof ProtocolError && (e as Error).message.endsWith(message),
    );
  }
});

Deno.test("failed: with the server that failed the client, or none (its disk failed first)", () => {
  const withServer = { type: "failed", server: "pc-2", reason: "timeout", detail: "no bytes" };
  assert.deepEqual(parsePeerMessage(JSON.stringify(withServer)), withServer);
  const disk = { type: "failed", reason: "disk", detail: "Cannot write zero chunk 3" };
  assert.deepEqual(parsePeerMessage(JSON.stringify(disk)), disk);
  assert.throws(
    () => parsePeerMessage(JSON.stringify({ ...disk, server: "" })),
    (e: unknown) =>
      e instanceof ProtocolError &&
      (e as Error).message.endsWith('field "server" ("") must be a string of 1..128 characters'),
  );
});
