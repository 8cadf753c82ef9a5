// The roles' command lines as an admin meets them: --help, exit codes and one clear error line.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const CASCADE = fileURLToPath(new URL("../cascade.ts", import.meta.url));

async function cascade(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CASCADE, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("every role command has --help with USAGE and OPTIONS", async () => {
  for (const cmd of ["master", "client", "server", "fake-server", "demo", "simulate", "history"]) {
    const r = await cascade(cmd, "--help");
    assert.equal(r.code, 0, `${cmd} --help exits 0`);
    assert.match(r.stdout, new RegExp(`^cascade ${cmd}: `), cmd);
    assert.match(r.stdout, /\nUSAGE:\n {2}cascade /, cmd);
    assert.match(r.stdout, /\nOPTIONS:\n/, cmd);
  }
  const top = await cascade("--help");
  assert.equal(top.code, 0);
  for (const cmd of ["slice", "verify", "master", "client", "demo", "build-netboot"]) {
    assert.match(top.stdout, new RegExp(`\\n {2}${cmd} `), `top-level help lists ${cmd}`);
  }
});

Deno.test("bad command lines exit 2 with one line naming the flag and value", async () => {
  const cases: [string[], string][] = [
    [
      ["master"],
      'cascade master: Missing --slices (or CASCADE_SLICES, or --image NAME=DIR per image) (see "cascade master --help")',
    ],
    [
      ["master", "--slices", "x", "--mode", "turbo"],
      'cascade master: Invalid --mode "turbo": expected "relay" or "classic"',
    ],
    [
      ["client", "--master", "ftp://x", "--target", "d"],
      'cascade client: Invalid --master "ftp://x": expected a URL like http://10.0.0.1:8080',
    ],
    [
      ["client", "--master", "http://h:1", "--target", "d", "--after", "dance"],
      'cascade client: Invalid --after "dance": expected serve, reboot or poweroff',
    ],
    [
      ["client", "--master", "http://h:1", "--target", "d", "--image-id", "abc"],
      'cascade client: Invalid --image-id "abc": expected 64 lower-case hex digits',
    ],
    [["demo", "--clients", "lots"], 'cascade demo: Invalid --clients "lots": not a whole number'],
    [["frobnicate"], 'cascade: unknown command "frobnicate" (try "cascade --help")'],
  ];
  for (const [args, line] of cases) {
    const r = await cascade(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trim(), line);
  }
});

Deno.test("a master given a missing slices folder says so and exits 1", async () => {
  const r = await cascade("master", "--slices", "/nonexistent/slices", "--port", "0");
  assert.equal(r.code, 1);
  assert.match(r.stderr.trim().split("\n").at(-1)!, /^cascade master: .*"\/nonexistent\/slices"/);
});
