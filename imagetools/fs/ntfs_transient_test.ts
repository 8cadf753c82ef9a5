// Windows' paging and hibernation files on a real ntfs-3g volume: their contents past the first
// MiB become free (zeros), the volume checks clean, every other file (a pagefile.sys in a
// subfolder included) reads back the same, and --keep-pagefiles keeps them whole.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { withTempDir } from "../testkit.ts";
import { analyzeDisk, zeroFreeBlocks } from "./analyze.ts";
import { bytesReader } from "./reader.ts";
import { TRANSIENT_HEAD } from "./ntfs_transient.ts";
import { fileBytes, type FileSpec, fileSums, fsck, makeNtfs } from "./testkit.ts";

const MIB = 1024 * 1024;
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

/** A root that needs index blocks (60 entries), the three files, and look-alikes kept. */
function files(): FileSpec[] {
  const out: FileSpec[] = [];
  for (let i = 0; i < 60; i++) {
    out.push({ path: `program-data-file-${i}.txt`, bytes: fileBytes(100 + i, 3000, "text") });
  }
  out.push({ path: "pagefile.sys", bytes: fileBytes(1, 6 * MIB, "random") });
  out.push({ path: "hiberfil.sys", bytes: fileBytes(2, 3 * MIB + 5000, "random") });
  out.push({ path: "swapfile.sys", bytes: fileBytes(3, MIB / 2, "random") });
  out.push({ path: "Windows/pagefile.sys", bytes: fileBytes(4, 2 * MIB, "random") });
  out.push({ path: "pagefile.sys.bak", bytes: fileBytes(5, 2 * MIB, "random") });
  return out;
}

for (const cluster of [4096, 512]) {
  Deno.test(`NTFS, ${cluster}-byte clusters: pagefile.sys, hiberfil.sys and swapfile.sys in the root drop their contents past 1 MiB; ntfsfix clean, every other file intact`, () =>
    withTempDir(async (tmp) => {
      const image = join(tmp, "ntfs.img");
      const specs = files();
      const plan = { first: specs, remove: [], then: [] };
      await makeNtfs(image, 64 * MIB, plan, tmp, ["-c", String(cluster)]);
      const bytes = await Deno.readFile(image);
      const kept = await analyzeDisk(bytesReader(bytes), bytes.length, { keepPagefiles: true });
      const layout = await analyzeDisk(bytesReader(bytes), bytes.length);
      assert.equal(kept.volumes[0].dropped, undefined);
      assert.equal(layout.volumes[0].dropped, "hiberfil.sys 3.0 MiB, pagefile.sys 6.0 MiB");
      // swapfile.sys fits in its kept head: nothing of it is dropped. The others, past 1 MiB:
      const dropped = (6 * MIB - TRANSIENT_HEAD) +
        Math.ceil((3 * MIB + 5000) / cluster) * cluster - TRANSIENT_HEAD;
      assert.equal(layout.volumes[0].free - kept.volumes[0].free, dropped);

      const copy = bytes.slice();
      zeroFreeBlocks(layout, 0, copy);
      const out = join(tmp, "zeroed.img");
      await Deno.writeFile(out, copy);
      await fsck("ntfs", out);
      const want: Record<string, string> = {};
      for (const f of specs) {
        const dropsPast = ["pagefile.sys", "hiberfil.sys"].includes(f.path);
        const b = dropsPast ? f.bytes.slice() : f.bytes;
        if (dropsPast) b.fill(0, TRANSIENT_HEAD);
        want[f.path] = md5(b);
      }
      assert.deepEqual(await fileSums("ntfs", out, tmp), want);

      // Kept (--keep-pagefiles): every file as written.
      const whole = bytes.slice();
      zeroFreeBlocks(kept, 0, whole);
      await Deno.writeFile(out, whole);
      const all = Object.fromEntries(specs.map((f) => [f.path, md5(f.bytes)]));
      assert.deepEqual(await fileSums("ntfs", out, tmp), all);
    }));
}

const CASCADE = new URL("../../cascade.ts", import.meta.url).pathname;

async function cascade(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CASCADE, ...args],
    env: { NO_COLOR: "1", CASCADE_QUIET: "", CASCADE_KEEP_PAGEFILES: "", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0, `cascade ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  return text;
}

Deno.test("slice, info and assemble from the command line: the dropped files are named; --keep-pagefiles keeps them", () =>
  withTempDir(async (tmp) => {
    const image = join(tmp, "c.img");
    const specs = files();
    await makeNtfs(image, 64 * MIB, { first: specs, remove: [], then: [] }, tmp);
    const said = await cascade(["slice", image, "--out", join(tmp, "s")]);
    const line = "ntfs, 9.3 MiB used, 54.7 MiB free (with the contents of hiberfil.sys 3.0 MiB, " +
      "pagefile.sys 6.0 MiB, past their first MiB)";
    assert.ok(said.includes(line), said);
    const info = await cascade(["info", join(tmp, "s")]);
    assert.ok(info.replace(/\s+/g, " ").includes(line), info);
    await cascade(["assemble", join(tmp, "s"), join(tmp, "out.img")]);
    const sums = await fileSums("ntfs", join(tmp, "out.img"), tmp);
    assert.equal(sums["pagefile.sys"], md5(specs.at(-5)!.bytes.slice().fill(0, TRANSIENT_HEAD)));
    assert.equal(sums["Windows/pagefile.sys"], md5(specs.at(-2)!.bytes));

    const kept = await cascade(["slice", image, "--out", join(tmp, "k"), "--keep-pagefiles"]);
    assert.ok(!kept.includes("with the contents of"), kept);
    const viaEnv = await cascade(["slice", image, "--out", join(tmp, "e")], {
      CASCADE_KEEP_PAGEFILES: "1",
    });
    assert.ok(!viaEnv.includes("with the contents of"), viaEnv);
  }));
