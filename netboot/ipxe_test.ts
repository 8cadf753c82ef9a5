import assert from "node:assert/strict";
import { assertGolden } from "./golden.ts";
import { renderFirstStage, renderImageScript, renderLocalBootScript } from "./ipxe.ts";

const settings = {
  master: "http://10.0.0.1:8080",
  target: "/dev/sda",
  imageId: "5e".repeat(32),
  after: "serve" as const,
};

Deno.test("first-stage iPXE script matches its golden file", async () => {
  await assertGolden("first-stage.ipxe", renderFirstStage("http://10.0.0.1:8080/"));
});

Deno.test("per-machine image script matches its golden file", async () => {
  await assertGolden(
    "image.ipxe",
    renderImageScript({ bootUrl: "http://10.0.0.1:8080/boot", mac: "52-54-00-12-34-56", settings }),
  );
});

Deno.test("per-machine local-boot script matches its golden file", async () => {
  await assertGolden("local.ipxe", renderLocalBootScript("52-54-00-12-34-56"));
});

Deno.test("iPXE rendering refuses values that would break the script", () => {
  assert.throws(() => renderFirstStage("http://m/${x}"), /Bad master URL/);
  assert.throws(
    () =>
      renderImageScript({
        bootUrl: "http://m/boot",
        mac: "x",
        settings,
        kernelArgs: "quiet ${evil}",
      }),
    /Bad kernel arguments/,
  );
  assert.throws(
    () =>
      renderImageScript({
        bootUrl: "http://m/boot",
        mac: "x",
        settings: { ...settings, imageId: "nope" },
      }),
    /Bad image id "nope"/,
  );
});
