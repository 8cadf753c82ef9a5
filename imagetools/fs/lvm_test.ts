// LVM2 made by the real tools (pvcreate, vgcreate, vgcfgrestore on a loop device; this kernel
// has no device-mapper, so the file systems are written into their extents directly): a
// linear logical volume is sliced like a partition (e2fsck clean, every file intact after
// imaging), a volume of two segments, the PV's metadata and its free extents are kept byte for
// byte, and metadata that fails its checksum keeps the whole PV.
import assert from "node:assert/strict";
import { join } from "node:path";
import { assembleImage, sliceImage } from "../mod.ts";
import { attachLoop, detachLoop, whyNoLoopDevices, withTempDir } from "../testkit.ts";
import { lvmCrc, parseLvmText } from "./lvm.ts";
import {
  extract,
  fileBytes,
  fileSums,
  fillPlan,
  fsck,
  makeDisk,
  makeExt4,
  makeSwap,
  run,
} from "./testkit.ts";

const MIB = 1024 * 1024;
const EXTENT = 4 * MIB; // vgcreate's default
const PE_START = MIB;
// No backup or archive files left in /etc/lvm, no warnings about the test's descriptors.
const QUIET = ["--config", "backup { backup = 0 archive = 0 }"];
Deno.env.set("LVM_SUPPRESS_FD_WARNINGS", "1");

/** A logical volume's metadata: its segments as [first PE on pv0, extents]. */
function lv(name: string, segments: [number, number][]): string {
  let le = 0;
  const segs = segments.map(([pe, count], i) => {
    const seg = `segment${i + 1} { start_extent = ${le} extent_count = ${count} ` +
      `type = "striped" stripe_count = 1 stripes = ["pv0", ${pe}] }`;
    le += count;
    return seg;
  });
  return `${name} { id = "${name[0]}00000-0000-0000-0000-0000-0000-000000" ` +
    `status = ["READ", "WRITE", "VISIBLE"] flags = [] segment_count = ${segments.length}\n` +
    `${segs.join("\n")}\n}\n`;
}

const LVS = `logical_volumes {\n${lv("root", [[2, 15]])}${lv("swap", [[17, 4]])}${
  lv("data", [[22, 2], [30, 2]])
}}\n`;

/** A 200 MiB PV file: VG "vgt" with root (ext4, 60 MiB), swap (16 MiB) and data (two
 * segments of random bytes); every other extent holds stale random bytes. */
async function makePv(path: string, tmp: string) {
  await Deno.writeFile(path, fileBytes(31, 200 * MIB, "random"));
  const device = await attachLoop(path);
  try {
    // Wipe the stale bytes where the label and metadata go, as a new disk would be.
    const f = await Deno.open(device, { write: true });
    await f.write(new Uint8Array(PE_START));
    f.close();
    await run("pvcreate", [...QUIET, "-qq", "-y", device]);
    await run("vgcreate", [...QUIET, "-qq", "vgt", device]);
    const backup = join(tmp, "vgt.txt");
    await run("vgcfgbackup", ["-f", backup, "vgt"]);
    const text = await Deno.readTextFile(backup);
    const at = text.lastIndexOf("}");
    await Deno.writeTextFile(backup, text.slice(0, at) + LVS + text.slice(at));
    await run("vgcfgrestore", [...QUIET, "-f", backup, "vgt"]);
  } finally {
    await detachLoop(device);
  }
  const root = join(tmp, "root.img");
  await makeExt4(root, 15 * EXTENT, fillPlan(32, 16, 500_000), tmp);
  const swap = join(tmp, "swap.img");
  await makeSwap(swap, 4 * EXTENT, 33);
  const pv = await Deno.open(path, { write: true });
  for (const [file, pe] of [[root, 2], [swap, 17]] as const) {
    await pv.seek(PE_START + pe * EXTENT, Deno.SeekMode.Start);
    await pv.write(await Deno.readFile(file));
  }
  pv.close();
  return { root };
}

const noLoop = await whyNoLoopDevices();

Deno.test({
  name: `LVM2 in a GPT partition: a linear LV's ext4 sliced like a partition, the rest kept${
    noLoop ? ` (ignored: ${noLoop})` : ""
  }`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const pv = join(tmp, "pv.img");
      await makePv(pv, tmp);
      const disk = join(tmp, "disk.img");
      const { starts } = await makeDisk(disk, "gpt", [{
        image: pv,
        size: 200 * MIB,
        type: "8e00",
      }]);
      const base = starts[0] + PE_START;
      const sliced = await sliceImage({ image: disk, out: join(tmp, "slices"), sync: false });
      const vols = sliced.layout!.volumes;
      assert.deepEqual(vols.map((v) => [v.number, v.name ?? null, v.fs, v.start, v.size]), [
        [1, null, "lvm2", starts[0], 200 * MIB],
        [1, "vgt/root", "ext4", base + 2 * EXTENT, 15 * EXTENT],
        [1, "vgt/swap", "swap", base + 17 * EXTENT, 4 * EXTENT],
      ]);
      assert.equal(
        vols[0].note,
        'LVM2 physical volume of "vgt": its metadata and free extents are kept, its linear ' +
          "logical volumes follow; kept whole: vgt/data: 2 segments",
      );
      assert.ok(vols[1].free > 0 && vols[1].note === undefined);
      assert.equal(vols[2].free, 4 * EXTENT - 4096);

      const out = join(tmp, "out.img");
      await assembleImage({ slices: sliced.dir, out, sync: false });
      const a = await Deno.readFile(disk);
      const b = await Deno.readFile(out);
      // Outside root and the swap's pages: every byte the golden disk's (label, metadata, the
      // two-segment LV, free extents, the tables).
      const lvs = [[base + 2 * EXTENT, base + 17 * EXTENT], [
        base + 17 * EXTENT + 4096,
        base + 21 * EXTENT,
      ]];
      let at = 0;
      for (const [from, to] of lvs) {
        assert.ok(a.subarray(at, from).every((x, i) => x === b[at + i]), `bytes ${at}..${from}`);
        at = to;
      }
      assert.ok(a.subarray(at).every((x, i) => x === b[at + i]), "the disk's tail");
      const g = join(tmp, "g.img");
      const c = join(tmp, "c.img");
      await extract(disk, base + 2 * EXTENT, 15 * EXTENT, g);
      await extract(out, base + 2 * EXTENT, 15 * EXTENT, c);
      await fsck("ext4", c);
      assert.deepEqual(await fileSums("ext4", c, tmp), await fileSums("ext4", g, tmp));
    }),
});

Deno.test({
  name: `LVM2 whose metadata text fails its checksum keeps the whole PV${
    noLoop ? ` (ignored: ${noLoop})` : ""
  }`,
  ignore: noLoop !== null,
  fn: () =>
    withTempDir(async (tmp) => {
      const pv = join(tmp, "pv.img");
      await makePv(pv, tmp);
      const bytes = await Deno.readFile(pv);
      // The current metadata: raw_locn[0] of the area header at 4096.
      const v = new DataView(bytes.buffer);
      const text = 4096 + Number(v.getBigUint64(4096 + 40, true));
      bytes[text + 10] ^= 0x20;
      await Deno.writeFile(pv, bytes);
      const sliced = await sliceImage({ image: pv, out: join(tmp, "slices"), sync: false });
      assert.deepEqual(sliced.layout!.volumes.map((v) => [v.fs, v.note]), [
        ["lvm2", "LVM2 metadata fails its checksum"],
      ]);
      assert.equal(sliced.zeroedBytes, 0);
    }),
});

Deno.test("parseLvmText reads sections, numbers, strings and lists; lvmCrc is LVM's calc_crc", () => {
  const c = parseLvmText('vg {\n  id = "a\\"b" # note\n  n = 8192\n  l = ["pv0", 2]\n  s { }\n}\n');
  assert.deepEqual(c, { vg: { id: 'a"b', n: 8192, l: ["pv0", 2], s: {} } });
  assert.throws(() => parseLvmText("vg { n = }"), /LVM metadata: not a number/);
  assert.throws(() => parseLvmText("vg { n = 1"), /a section does not end/);
  // calc_crc(INITIAL_CRC, "") is its seed.
  assert.equal(lvmCrc(new Uint8Array(0)), 0xf597a6cf);
});
