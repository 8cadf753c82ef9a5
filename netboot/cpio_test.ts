import assert from "node:assert/strict";
import { type CpioEntry, writeCpio } from "./cpio.ts";

const enc = new TextEncoder();

const entries: CpioEntry[] = [
  { type: "file", path: "/init", mode: 0o755, data: enc.encode("#!/bin/sh\necho hi\n") },
  { type: "file", path: "etc/odd", data: enc.encode("abc") }, // 3 bytes: exercises padding
  { type: "symlink", path: "bin/sh", target: "busybox" },
  { type: "file", path: "bin/busybox", mode: 0o755, data: new Uint8Array(1000).fill(7) },
  { type: "dir", path: "proc" },
  { type: "char", path: "dev/console", major: 5, minor: 1 },
  { type: "file", path: "empty", data: new Uint8Array() },
];

async function run(cmd: string, args: string[], opts: { stdin?: Uint8Array; cwd?: string } = {}) {
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin) {
    const w = child.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  assert.equal(out.code, 0, `${cmd} ${args.join(" ")} failed: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout);
}

Deno.test("writeCpio output is listed by the system cpio with modes, links and devices", async () => {
  const bytes = writeCpio(entries);
  const listing = await run("cpio", ["-itv", "--quiet"], { stdin: bytes });
  // "perm links owner group size-or-dev Jan  1  1970 name [-> target]": keep perm and name.
  const rows = listing.trim().split("\n").map((l) => l.replace(/^(\S+).* 1970 /, "$1 "));
  assert.deepEqual(rows, [
    "drwxr-xr-x bin",
    "-rwxr-xr-x bin/busybox",
    "lrwxrwxrwx bin/sh -> busybox",
    "drwxr-xr-x dev",
    "crw------- dev/console",
    "-rw-r--r-- empty",
    "drwxr-xr-x etc",
    "-rw-r--r-- etc/odd",
    "-rwxr-xr-x init",
    "drwxr-xr-x proc",
  ]);
  assert.match(listing, /crw------- +1 root +root +5, +1 .* dev\/console/);
});

Deno.test("writeCpio output extracts with the system cpio to the same bytes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Leave out the device node: creating it needs mknod rights the test may not have.
    const bytes = writeCpio(entries.filter((e) => e.type !== "char"));
    await run("cpio", ["-idm", "--quiet", "--no-absolute-filenames"], { stdin: bytes, cwd: dir });
    assert.equal(await Deno.readTextFile(`${dir}/init`), "#!/bin/sh\necho hi\n");
    assert.equal(await Deno.readTextFile(`${dir}/etc/odd`), "abc");
    assert.deepEqual(await Deno.readFile(`${dir}/bin/busybox`), new Uint8Array(1000).fill(7));
    assert.equal(await Deno.readLink(`${dir}/bin/sh`), "busybox");
    assert.equal((await Deno.stat(`${dir}/init`)).mode! & 0o777, 0o755);
    assert.equal((await Deno.stat(`${dir}/empty`)).size, 0);
    assert.ok((await Deno.stat(`${dir}/proc`)).isDirectory);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeCpio is deterministic whatever the input order", () => {
  const a = writeCpio(entries);
  const b = writeCpio([...entries].reverse());
  assert.deepEqual(a, b);
  assert.equal(a.length % 4, 0);
  // Fixed mtime, uid and gid: fields 4, 5 and 7 of the first header are all zero.
  const head = new TextDecoder().decode(a.subarray(0, 110));
  assert.equal(head.slice(0, 6), "070701");
  assert.equal(head.slice(6 + 8 * 2, 6 + 8 * 4), "0".repeat(16));
  assert.equal(head.slice(6 + 8 * 5, 6 + 8 * 6), "0".repeat(8));
});

Deno.test("writeCpio rejects duplicates, .. and a file used as a directory", () => {
  const f = (path: string): CpioEntry => ({ type: "file", path, data: new Uint8Array() });
  assert.throws(() => writeCpio([f("a"), f("/a")]), /Cannot add "a" to a cpio archive twice/);
  assert.throws(() => writeCpio([f("../x")]), /".." is not allowed/);
  assert.throws(() => writeCpio([f("a"), f("a/b")]), /"a" is not a directory/);
});
