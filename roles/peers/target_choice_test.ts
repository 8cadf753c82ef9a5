import assert from "node:assert/strict";
import { join } from "node:path";
import { DiskError, resolveTarget } from "./target_choice.ts";

Deno.test("resolveTarget: a path as given, a rule against /sys/block, no match a DiskError", async () => {
  const root = await Deno.makeTempDir();
  try {
    assert.deepEqual(resolveTarget("/dev/sda", 1), {
      path: "/dev/sda",
      reason: 'Target "/dev/sda" given as a path',
    });
    for (const [name, sectors] of [["vda", 2048], ["vdb", 8192]] as const) {
      await Deno.mkdir(join(root, name));
      await Deno.writeTextFile(join(root, name, "size"), `${sectors}\n`);
      await Deno.writeTextFile(join(root, name, "removable"), "0\n");
    }
    const chosen = resolveTarget("auto", 2 * 1024 * 1024, root);
    assert.equal(chosen.path, "/dev/vdb");
    assert.equal(
      chosen.reason,
      'Chose /dev/vdb (virtio, 4.0 MiB) by target rule "auto": the first non-removable disk of ' +
        "at least 2.0 MiB; passed over /dev/vda: 1.0 MiB, under 2.0 MiB",
    );
    assert.throws(() => resolveTarget("min:1GB", 1, root), {
      name: "DiskError",
      message: 'No disk matches target rule "min:1GB" (the first non-removable disk of at least ' +
        "954 MiB): 2 disk(s) seen; passed over /dev/vda: 1.0 MiB, under 954 MiB; " +
        "/dev/vdb: 4.0 MiB, under 954 MiB",
    });
    assert.ok(new DiskError("x") instanceof Error);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
