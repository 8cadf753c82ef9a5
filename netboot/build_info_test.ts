import assert from "node:assert/strict";
import { parseBuildInfo, renderBuildInfo } from "./build_info.ts";
import { sampleBuildInfo } from "./testkit.ts";

Deno.test("build info: render then parse gives the same BuildInfo, fields in a fixed order", () => {
  const info = sampleBuildInfo({ master: "http://10.0.0.1:8080", after: "poweroff" });
  const text = renderBuildInfo(info);
  assert.deepEqual(parseBuildInfo(text), info);
  assert.deepEqual(Object.keys(JSON.parse(text)), [
    "master",
    "kernelVersion",
    "kernelArgs",
    "binaryMode",
    "compression",
    "target",
    "after",
    "modules",
    "firmware",
    "secureBoot",
    "cpioBytes",
    "inputs",
  ]);
  assert.ok(text.endsWith("}\n"));
});

Deno.test("build info: a secure boot build records the signed shim and GRUB it shipped", () => {
  const base = sampleBuildInfo();
  const signed = { path: "/sb/shimx64.efi.signed", sha256: "1".repeat(64) };
  const info = sampleBuildInfo({
    secureBoot: true,
    inputs: { ...base.inputs, shimx64: signed, grubx64: { ...signed, path: "/sb/grub" } },
  });
  assert.deepEqual(parseBuildInfo(renderBuildInfo(info)), info);
  assert.deepEqual(Object.keys(JSON.parse(renderBuildInfo(info)).inputs).slice(-2), [
    "shimx64",
    "grubx64",
  ]);
});

Deno.test("build info: the master URL loses its trailing slash; unknown fields are ignored", () => {
  const raw = { ...sampleBuildInfo({ master: "http://10.0.0.1:8080/" }), extra: 1 };
  assert.equal(parseBuildInfo(JSON.stringify(raw)).master, "http://10.0.0.1:8080");
});

Deno.test("build info: every bad field is one SyntaxError naming the file, field and value", () => {
  const where = "dist/netboot/build.json";
  const good = sampleBuildInfo();
  const cases: [unknown, string][] = [
    ["{", "not JSON"],
    [[], 'field "(top level)" ([]) must be an object'],
    [{ ...good, master: "ftp://x" }, 'field "master" ("ftp://x") must start with http://'],
    [{ ...good, after: "halt" }, 'field "after" ("halt") must be one of serve, reboot, poweroff'],
    [{ ...good, target: "sda" }, 'field "target" ("sda") must be a device path such as /dev/sda'],
    [{ ...good, kernelArgs: undefined }, 'field "kernelArgs" (missing) must be a string'],
    [{ ...good, modules: -1 }, 'field "modules" (-1) must be a whole number >= 0'],
    [{ ...good, secureBoot: "yes" }, 'field "secureBoot" ("yes") must be true or false'],
    [{ ...good, binaryMode: "jit" }, 'field "binaryMode" ("jit") must be one of compiled, bundle'],
    [{ ...good, inputs: undefined }, 'field "inputs" (missing) must be an object'],
    [
      { ...good, inputs: { ...good.inputs, kernel: { path: "/k", sha256: "abc" } } },
      'field "inputs.kernel.sha256" ("abc") must be 64 lowercase hex digits',
    ],
  ];
  for (const [value, message] of cases) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    assert.throws(
      () => parseBuildInfo(text, where),
      (e: unknown) =>
        e instanceof SyntaxError &&
        e.message.startsWith(`Invalid build info "${where}": `) &&
        e.message.includes(message),
      message,
    );
  }
});
