import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import { analyzeDisk, zeroFreeBlocks } from "./analyze.ts";
import { readPartitionTable } from "./partitions.ts";
import { bytesReader } from "./reader.ts";

function mbr(disk: Uint8Array, sector: number, entries: [number, number, number][]) {
  const at = sector * 512;
  entries.forEach(([type, lba, sectors], i) => {
    const e = new DataView(disk.buffer, at + 446 + 16 * i, 16);
    e.setUint8(4, type);
    e.setUint32(8, lba, true);
    e.setUint32(12, sectors, true);
  });
  disk[at + 510] = 0x55;
  disk[at + 511] = 0xaa;
}

Deno.test("an MBR's extended partition yields its logical partitions from 5 on", async () => {
  const disk = new Uint8Array(4096 * 512);
  mbr(disk, 0, [[0x83, 2048, 1000], [0x05, 3072, 1024]]);
  mbr(disk, 3072, [[0x83, 16, 200], [0x05, 512, 300]]);
  mbr(disk, 3584, [[0x82, 16, 100]]);
  const t = await readPartitionTable(bytesReader(disk), disk.length);
  assert.equal(t.scheme, "mbr");
  assert.deepEqual(t.partitions.map((p) => [p.number, p.start / 512, p.size / 512, p.type]), [
    [1, 2048, 1000, "0x83"],
    [5, 3088, 200, "0x83"],
    [6, 3600, 100, "0x82"],
  ]);
});

Deno.test("a looping chain of logical partitions keeps the whole disk, saying why", async () => {
  const disk = new Uint8Array(4096 * 512);
  mbr(disk, 0, [[0x05, 3072, 1024]]);
  mbr(disk, 3072, [[0x83, 16, 200], [0x05, 0, 300]]);
  const layout = await analyzeDisk(bytesReader(disk), disk.length);
  assert.deepEqual(layout.maps, []);
  assert.deepEqual(layout.volumes, [{
    number: 0,
    start: 0,
    size: disk.length,
    fs: null,
    note: "Invalid MBR: the chain of logical partitions loops at sector 3072",
    free: 0,
  }]);
});

Deno.test("partitions that share bytes are both kept whole: neither one's free blocks are zeroed", async () => {
  const disk = new Uint8Array(4096 * 512).map((_, i) => (i * 31 + (i >> 9)) & 0xff);
  // A swap area (its header page used, the rest free) whose tail is a second partition's head.
  disk.fill(0, 0, 512);
  mbr(disk, 0, [[0x82, 1024, 1024], [0x83, 1536, 1024]]);
  new TextEncoder().encodeInto("SWAPSPACE2", disk.subarray(1024 * 512 + 4096 - 10));
  const layout = await analyzeDisk(bytesReader(disk), disk.length);
  assert.deepEqual(layout.maps, []);
  assert.deepEqual(layout.volumes.map((v) => [v.number, v.fs, v.free, v.note]), [
    [1, "swap", 0, "overlaps partition 2"],
    [2, null, 0, "overlaps partition 1"],
  ]);
  const copy = disk.slice();
  assert.equal(zeroFreeBlocks(layout, 0, copy), 0);
  assert.deepEqual(copy, disk);
  // Apart, the same swap area's free pages are found.
  mbr(disk, 0, [[0x82, 1024, 1024], [0x83, 2048, 1024]]);
  const apart = await analyzeDisk(bytesReader(disk), disk.length);
  assert.deepEqual(apart.volumes.map((v) => [v.fs, v.free]), [["swap", 1024 * 512 - 4096], [
    null,
    0,
  ]]);
});

Deno.test("bytes with no table and no file system are kept whole", async () => {
  const disk = new Uint8Array(64 * 1024).map((_, i) => (i * 31) & 0xff);
  const layout = await analyzeDisk(bytesReader(disk), disk.length);
  assert.equal(layout.scheme, "none");
  assert.deepEqual(layout.volumes.map((v) => [v.fs, v.free]), [[null, 0]]);
});

/** A GPT in `ss`-byte sectors: protective MBR, the header at LBA 1, one entry at LBA 2. */
function gpt(ss: number, first: number, last: number): Uint8Array {
  const disk = new Uint8Array(1024 * ss);
  mbr(disk, 0, [[0xee, 1, 1023]]);
  const h = new DataView(disk.buffer, ss, 92);
  new TextEncoder().encodeInto("EFI PART", disk.subarray(ss));
  h.setBigUint64(24, 1n, true);
  h.setBigUint64(72, 2n, true);
  h.setUint32(12, 92, true);
  h.setUint32(80, 4, true);
  h.setUint32(84, 128, true);
  const e = new DataView(disk.buffer, 2 * ss, 128);
  e.setUint32(0, 0x0fc63daf, true); // a type GUID (Linux filesystem's first bytes)
  e.setBigUint64(32, BigInt(first), true);
  e.setBigUint64(40, BigInt(last), true);
  h.setUint32(88, crc32(disk.subarray(2 * ss, 2 * ss + 4 * 128)) >>> 0, true);
  h.setUint32(16, crc32(disk.subarray(ss, ss + 92)) >>> 0, true);
  return disk;
}

Deno.test("a GPT counts in 512-byte sectors, or in 4096 on a 4Kn disk (its header at byte 4096)", async () => {
  for (const ss of [512, 4096]) {
    const t = await readPartitionTable(bytesReader(gpt(ss, 256, 511)), 1024 * ss);
    assert.equal(t.scheme, "gpt", `${ss}`);
    assert.equal(t.sectorSize, ss);
    assert.deepEqual(t.partitions.map((p) => [p.start, p.size]), [[256 * ss, 256 * ss]]);
  }
  // A 4Kn partition past the disk's end is refused as in 512-byte sectors.
  await assert.rejects(
    readPartitionTable(bytesReader(gpt(4096, 256, 1024)), 1024 * 4096),
    /partition 1 spans sectors 256..1024, outside the disk/,
  );
});

Deno.test("a GPT whose header or entries fail their CRC keeps the whole disk, saying why", async () => {
  const entry = gpt(512, 256, 511);
  entry[2 * 512 + 40] ^= 1; // the partition's last sector, changed after the CRC was taken
  const header = gpt(512, 256, 511);
  header[512 + 72] ^= 1; // the entries' LBA
  for (
    const [disk, note] of [
      [entry, /^Bad GPT partition entries: CRC32 [0-9a-f]+ recorded, [0-9a-f]+ computed$/],
      [header, /^Bad GPT header: CRC32 [0-9a-f]+ recorded, [0-9a-f]+ computed$/],
    ] as const
  ) {
    const layout = await analyzeDisk(bytesReader(disk), disk.length);
    assert.deepEqual(layout.maps, []);
    assert.equal(layout.volumes.length, 1);
    assert.equal(layout.volumes[0].number, 0);
    assert.match(layout.volumes[0].note ?? "", note);
  }
});
