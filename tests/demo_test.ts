// The README's first command: `deno task demo` images a lab of 10 PCs on this machine, every
// disk byte-identical to the golden image, and the master refuses none of their connections
// (all 10 come from 127.0.0.1, where a real room's PCs each have an address of their own).
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { withTempDir } from "../imagetools/testkit.ts";

const CASCADE = fileURLToPath(new URL("../cascade.ts", import.meta.url));

Deno.test("demo: 10 PCs imaged byte-identical, no connection of theirs refused", async () => {
  await withTempDir(async (dir) => {
    const work = join(dir, "lab");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", CASCADE, "demo", "--size", "16MiB", "--dir", work],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /\n10 of 10 PCs imaged and byte-identical to the golden image in /);
    const master = await Deno.readTextFile(join(work, "logs", "master.log"));
    assert.doesNotMatch(master, /connections\.refused/, "the master refused a PC's connection");
    assert.doesNotMatch(text, /master-unreachable/);
  });
});
