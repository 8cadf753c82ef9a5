import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { leftoverOwner, leftoverPath, removeLeftovers } from "./leftovers.ts";
import { listDir, withTempDir } from "./testkit.ts";

Deno.test("leftoverPath names its maker; leftoverOwner reads only such names", () => {
  const out = "/srv/images/games.img.cascade";
  const path = leftoverPath(out, "partial");
  assert.equal(path.startsWith("/srv/images/.games.img.cascade.partial-"), true);
  assert.deepEqual(leftoverOwner(out, basename(path)), { pid: Deno.pid, host: Deno.hostname() });
  assert.equal(leftoverOwner(out, basename(leftoverPath(out, "old")))?.pid, Deno.pid);
  for (
    const name of [
      "games.img.cascade",
      ".games.img.cascade.partial-12",
      ".games.img.cascade.partial-x-0123abcd@h",
      ".other.cascade.partial-12-0123abcd@h",
      ".games.img.cascade.tmp-12-0123abcd@h",
    ]
  ) assert.equal(leftoverOwner(out, name), null, name);
});

Deno.test("removeLeftovers removes only this host's leftovers whose process is gone", () =>
  withTempDir(async (dir) => {
    const out = join(dir, "slices");
    // A process that has ended: its pid is free (until reused, which would only keep a leftover).
    const ended = new Deno.Command("true").spawn();
    await ended.status;
    const host = Deno.hostname();
    const names = {
      dead: `.slices.partial-${ended.pid}-0123abcd@${host}`,
      deadOld: `.slices.old-${ended.pid}-89abcdef@${host}`,
      live: `.slices.partial-${Deno.pid}-0123abcd@${host}`,
      otherHost: `.slices.partial-${ended.pid}-0123abcd@elsewhere.example`,
      otherOut: `.other.partial-${ended.pid}-0123abcd@${host}`,
    };
    for (const name of Object.values(names)) {
      await Deno.mkdir(join(dir, name, "chunks"), { recursive: true });
    }
    await Deno.writeTextFile(join(dir, "keep.txt"), "x");
    const removed = await removeLeftovers(out);
    assert.deepEqual(removed.sort(), [join(dir, names.dead), join(dir, names.deadOld)].sort());
    assert.deepEqual(
      await listDir(dir),
      [names.live, names.otherOut, names.otherHost, "keep.txt"].sort(),
    );
    assert.deepEqual(await removeLeftovers(join(dir, "missing", "slices")), []);
  }));
