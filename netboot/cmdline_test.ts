import assert from "node:assert/strict";
import {
  type BootSettings,
  clientArgs,
  parseCascadeCmdline,
  renderCascadeCmdline,
  splitCmdline,
} from "./cmdline.ts";

const ID = "ab".repeat(32);
const good: BootSettings = {
  master: "http://10.0.0.1:8080",
  target: "/dev/nvme0n1",
  imageId: ID,
  after: "reboot",
};

Deno.test("renderCascadeCmdline and parseCascadeCmdline round-trip", () => {
  const line = renderCascadeCmdline({ ...good, master: "http://10.0.0.1:8080/" });
  assert.equal(
    line,
    `cascade.master=http://10.0.0.1:8080 cascade.image=${ID} cascade.target=/dev/nvme0n1 ` +
      "cascade.after=reboot",
  );
  const parsed = parseCascadeCmdline(`BOOT_IMAGE=vmlinuz initrd=initrd quiet ${line} console=tty0`);
  assert.deepEqual(parsed, good);
});

Deno.test("parseCascadeCmdline defaults after to serve and leaves the image out", () => {
  assert.deepEqual(
    parseCascadeCmdline("cascade.master=https://m.lab cascade.target=/dev/sda"),
    { master: "https://m.lab", target: "/dev/sda", after: "serve" },
  );
});

Deno.test("parseCascadeCmdline reports every bad value at once", () => {
  assert.throws(
    () =>
      parseCascadeCmdline(
        "cascade.master=ftp://x cascade.image=ABC cascade.after=halt cascade.target=sda " +
          "cascade.colour=red",
      ),
    {
      name: "TypeError",
      message:
        'Bad cascade settings on the kernel command line: unknown setting "cascade.colour"; ' +
        'cascade.master "ftp://x": must start with http:// or https://; ' +
        'cascade.target "sda": must be a device path such as /dev/sda or a target rule ' +
        '(term "sda" is unknown (known: auto, path:, model:, min:, max:, usb, largest)); ' +
        'cascade.image "ABC": must be 64 lowercase hex digits (a SHA-256); ' +
        'cascade.after "halt": must be one of serve, reboot, poweroff',
    },
  );
});

Deno.test("parseCascadeCmdline rejects missing settings, bad URLs, paths and any token", () => {
  const bad = (line: string, re: RegExp) => assert.throws(() => parseCascadeCmdline(line), re);
  bad("quiet", /cascade.master=URL is missing; cascade.target=DISK is missing/);
  bad("cascade.master=not-a-url cascade.target=/dev/sda", /"not-a-url": not a URL/);
  bad("cascade.master=http://u:p@m cascade.target=/dev/sda", /no credentials, query/);
  bad("cascade.master=http://m cascade.target=/dev/../etc/x", /must be a device path/);
  bad("cascade.master=http://m cascade.target=/dev/sda cascade.image=" + "a".repeat(63), /64/);
  // No credential rides on a kernel command line (any host can read it): an old token is refused.
  bad(
    "cascade.master=http://m cascade.target=/dev/sda cascade.token=t0k",
    /unknown setting "cascade.token"/,
  );
});

Deno.test("splitCmdline honours double quotes", () => {
  assert.deepEqual(splitCmdline(' a "b c"  d="e f" '), ["a", "b c", "d=e f"]);
});

Deno.test("clientArgs renders the cascade client command line", () => {
  assert.deepEqual(clientArgs(good), [
    "client",
    "--master",
    "http://10.0.0.1:8080",
    "--target",
    "/dev/nvme0n1",
    "--image-id",
    ID,
    "--after",
    "reboot",
  ]);
  assert.throws(() => clientArgs({ ...good, after: "halt" as "serve" }), /Bad after action "halt"/);
});

Deno.test("cascade.lldp: seconds to listen for the switch's LLDP frame, rendered and read back", () => {
  const s = { master: "http://10.0.0.1:8080", target: "auto", after: "serve" as const, lldp: 31 };
  const line = renderCascadeCmdline(s);
  assert.equal(
    line,
    "cascade.master=http://10.0.0.1:8080 cascade.target=auto cascade.after=serve cascade.lldp=31",
  );
  assert.deepEqual(parseCascadeCmdline(line), s);
  assert.throws(
    () => parseCascadeCmdline("cascade.master=http://m cascade.target=auto cascade.lldp=1000"),
    /cascade\.lldp "1000": must be seconds to wait, 0 to 999/,
  );
});
