// XFS made and filled by the real tools (mkfs.xfs, the kernel's driver through a loop device):
// the disk imaged from the slices passes xfs_repair -n with every file intact, the used blocks
// are partclone.xfs's count plus the AGs' free-list blocks (kept: a superset; a few more where
// the free-space trees have nodes), and a log that needs replay keeps the file system whole.
import assert from "node:assert/strict";
import { join } from "node:path";
import { assembleImage, sliceImage } from "../mod.ts";
import { whyNoLoopDevices, withTempDir } from "../testkit.ts";
import {
  extract,
  fileBytes,
  fileSums,
  type FillPlan,
  fillPlan,
  fsck,
  makeDisk,
  makeXfs,
  run,
  withLoopMount,
} from "./testkit.ts";

const MIB = 1024 * 1024;
const SIZE = 304 * MIB; // mkfs.xfs makes nothing under 300 MiB

/** partclone.xfs's used bytes, and the blocks on the AGs' free lists (xfs_db). */
async function partcloneAndFreeList(image: string, tmp: string) {
  const log = join(tmp, "partclone.log");
  await run("partclone.xfs", ["-c", "-s", image, "-O", join(tmp, "pc.img"), "-L", log]);
  await Deno.remove(join(tmp, "pc.img"));
  const text = await Deno.readTextFile(log);
  const used = Number(/Space in use:.*= (\d+) Blocks/.exec(text)![1]);
  const block = Number(/Block size:\s*(\d+) Byte/.exec(text)![1]);
  const ags = Number(
    /agcount = (\d+)/.exec(await run("xfs_db", ["-r", "-c", "sb 0", "-c", "p agcount", image]))![1],
  );
  let freeList = 0;
  for (let ag = 0; ag < ags; ag++) {
    const out = await run("xfs_db", ["-r", "-c", `agf ${ag}`, "-c", "p flcount", image]);
    freeList += Number(/flcount = (\d+)/.exec(out)![1]);
  }
  return { used: used * block, freeList: freeList * block, block };
}

/** Slice `disk`, assemble it, and check the XFS at `start`: repair-clean, files intact. */
async function sliceAndCheck(
  disk: string,
  start: number,
  size: number,
  tmp: string,
  mounted = true,
) {
  const sliced = await sliceImage({
    image: disk,
    out: join(tmp, "slices"),
    sync: false,
    force: true,
  });
  const v = sliced.layout!.volumes.find((v) => v.start === start)!;
  assert.equal(v.fs, "xfs");
  assert.equal(v.note, undefined);
  assert.ok(v.free > 0 && v.free < size);
  const out = join(tmp, "assembled.img");
  await assembleImage({ slices: sliced.dir, out, sync: false, force: true });
  const golden = join(tmp, "golden-part.img");
  const copy = join(tmp, "copy-part.img");
  await extract(disk, start, size, golden);
  await extract(out, start, size, copy);
  await fsck("xfs", copy);
  if (mounted) {
    const sums = await fileSums("xfs", golden, tmp);
    assert.ok(Object.keys(sums).length >= 6);
    assert.deepEqual(await fileSums("xfs", copy, tmp), sums);
  }
  const pc = await partcloneAndFreeList(golden, tmp);
  // partclone.xfs counts the free lists free, and where the free-space trees grew nodes a few
  // blocks more (8 in the two-level test); every block kept over its count is kept byte for
  // byte, so the superset is safe.
  const over = size - v.free - (pc.used + pc.freeList);
  assert.ok(over >= 0 && over <= 16 * pc.block, `${over} bytes over partclone's count`);
  return { sliced, volume: v };
}

const noLoop = await whyNoLoopDevices();
const ignored = noLoop ? ` (ignored: ${noLoop})` : "";

Deno.test({
  name:
    `XFS (v5, 4 KiB blocks) in an MBR partition: written, deleted, rewritten; repair-clean and intact after slicing${ignored}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const fs = join(tmp, "root.img");
      await makeXfs(fs, SIZE, fillPlan(21, 30, 600_000), tmp);
      const disk = join(tmp, "disk.img");
      const { starts } = await makeDisk(disk, "mbr", [{ image: fs, size: SIZE, type: "83" }]);
      await sliceAndCheck(disk, starts[0], SIZE, tmp);
    }),
});

Deno.test({
  name: `XFS with 1 KiB blocks and a free-space tree of two levels (many small holes)${ignored}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const fs = join(tmp, "holes.img");
      const first = Array.from({ length: 900 }, (_, i) => ({
        path: `a/f${i}.bin`,
        bytes: fileBytes(500 + i, 3000, i % 2 ? "text" : "random"),
      }));
      const plan: FillPlan = {
        first,
        remove: first.filter((_, i) => i % 2).map((f) => f.path),
        then: [],
      };
      await makeXfs(fs, SIZE, plan, tmp, ["-b", "size=1024"]);
      // Some AG's tree has two levels: the nodes are walked, not only a leaf root.
      let two = false;
      for (let ag = 0; ag < 4 && !two; ag++) {
        const out = await run("xfs_db", ["-r", "-c", `agf ${ag}`, "-c", "p bnolevel", fs]);
        two = Number(/bnolevel = (\d+)/.exec(out)![1]) >= 2;
      }
      assert.ok(two, "a bnobt of two levels");
      await sliceAndCheck(fs, 0, SIZE, tmp);
    }),
});

Deno.test("XFS v4 (no CRCs, made by mkfs.xfs -m crc=0 -p): repair-clean after slicing, used as partclone counts", () =>
  withTempDir(async (tmp) => {
    const src = join(tmp, "src");
    await Deno.mkdir(src);
    const lines = ["/dev/null", "0 0", "d--755 0 0"];
    for (let i = 0; i < 12; i++) {
      const p = join(src, `f${i}`);
      await Deno.writeFile(p, fileBytes(700 + i, 400_000 + i * 9000, i % 2 ? "text" : "random"));
      lines.push(`f${i} ---644 0 0 ${p}`);
    }
    lines.push("$");
    const proto = join(tmp, "proto");
    await Deno.writeTextFile(proto, lines.join("\n") + "\n");
    const fs = join(tmp, "v4.img");
    const f = await Deno.open(fs, { write: true, create: true });
    await f.truncate(SIZE);
    f.close();
    await run("mkfs.xfs", ["-q", "-f", "-m", "crc=0", "-p", proto, fs]);
    await sliceAndCheck(fs, 0, SIZE, tmp, false);
  }));

Deno.test({
  name:
    `XFS whose log needs replay (shut down while mounted) is kept whole, as xfs_repair -n warns${ignored}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const fs = join(tmp, "dirty.img");
      await makeXfs(fs, SIZE, fillPlan(22, 4, 200_000), tmp);
      await withLoopMount(fs, tmp, async (dir) => {
        await Deno.writeFile(join(dir, "late.bin"), fileBytes(9, 500_000, "random"));
        await run("sync", []);
        await run("xfs_io", ["-x", "-c", "shutdown", dir]);
      });
      const repair = await new Deno.Command("xfs_repair", {
        args: ["-n", "-f", fs],
        stderr: "piped",
        stdout: "piped",
      }).output();
      assert.match(new TextDecoder().decode(repair.stderr), /metadata changes in a log/);
      const sliced = await sliceImage({ image: fs, out: join(tmp, "slices"), sync: false });
      assert.deepEqual(sliced.layout!.volumes.map((v) => [v.fs, v.note, v.free]), [[
        "xfs",
        "XFS log needs replay (not cleanly unmounted: mount and unmount it, or run xfs_repair)",
        0,
      ]]);
      assert.equal(sliced.zeroedBytes, 0);
    }),
});

Deno.test({
  name:
    `XFS whose log has wrapped (its second pass): clean after unmount, kept whole after a shutdown${ignored}`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const fs = join(tmp, "wrapped.img");
      await makeXfs(fs, SIZE, fillPlan(23, 3, 100_000), tmp);
      // 64 MiB of log (mkfs.xfs's least) fills with 120,000 creates and deletes.
      await withLoopMount(fs, tmp, async (dir) => {
        for (let r = 0; r < 6; r++) {
          const d = join(dir, `churn${r}`);
          await Deno.mkdir(d);
          for (let i = 0; i < 20_000; i++) (await Deno.create(join(d, `${i}`))).close();
          await run("sync", ["-f", dir]);
          await Deno.remove(d, { recursive: true });
          await run("sync", ["-f", dir]);
        }
      });
      const { logstart, logblocks, agblocks, agblklog, blocksize } = Object.fromEntries(
        (await run("xfs_db", [
          "-r",
          "-c",
          "sb 0",
          "-c",
          "p logstart logblocks agblocks agblklog blocksize",
          fs,
        ])).trim().split("\n").map((l) => l.split(" = ").map((x, i) => i ? Number(x) : x)),
      );
      const at = (Math.floor(logstart / 2 ** agblklog) * agblocks + logstart % 2 ** agblklog) *
        blocksize;
      // Block 0's cycle: a record header's h_cycle, or a data block's first word.
      const head = await Deno.readFile(fs).then((b) => new DataView(b.buffer, at, 8));
      const cycle = head.getUint32(0) === 0xfeedbabe ? head.getUint32(4) : head.getUint32(0);
      assert.equal(cycle, 2, `the log (${logblocks} blocks) on its 2nd pass`);
      const clean = await sliceImage({ image: fs, out: join(tmp, "clean"), sync: false });
      assert.deepEqual(clean.layout!.volumes.map((v) => [v.fs, v.note]), [["xfs", undefined]]);

      await withLoopMount(fs, tmp, async (dir) => {
        await Deno.writeFile(join(dir, "late.bin"), fileBytes(10, 300_000, "random"));
        await run("sync", ["-f", dir]);
        await run("xfs_io", ["-x", "-c", "shutdown", dir]);
      });
      const dirty = await sliceImage({ image: fs, out: join(tmp, "dirty"), sync: false });
      assert.match(dirty.layout!.volumes[0].note ?? "", /XFS log needs replay/);
    }),
});
