// NTFS's journal decides whether a volume's $Bitmap can be trusted: synthetic journals judged as
// ntfs-3g judges them, and a real mkntfs volume whose journal is made to say what Windows' Fast
// Startup leaves: kept whole with a note naming why, where ntfs-3g calls the same volume unclean.
import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../testkit.ts";
import { analyzeDisk } from "./analyze.ts";
import { journalState } from "./ntfs_logfile.ts";
import { bytesReader, NotUnderstood } from "./reader.ts";
import { fillPlan, makeNtfs, run } from "./testkit.ts";

const MIB = 1024 * 1024;
const PAGE = 4096;
const JOURNAL = 2 * MIB;

/** A restart page as Windows writes one (log version 1.1, one client "NTFS", fixups applied):
 * `inUse` the first client in use (0xffff: none), `flags` the restart area's. */
function restartPage(lsn: number, inUse: number, flags: number): Uint8Array {
  const page = new Uint8Array(PAGE);
  const v = new DataView(page.buffer);
  page.set(new TextEncoder().encode("RSTR"));
  v.setUint16(4, 0x1e, true); // update sequence array: 1 + 8 sectors
  v.setUint16(6, 9, true);
  v.setUint32(16, PAGE, true); // system and log page sizes
  v.setUint32(20, PAGE, true);
  v.setUint16(24, 0x30, true); // the restart area's offset
  v.setUint16(26, 1, true);
  v.setUint16(28, 1, true);
  const ra = 0x30;
  v.setBigUint64(ra, BigInt(lsn), true);
  v.setUint16(ra + 8, 1, true); // log clients
  v.setUint16(ra + 10, 0xffff, true); // free list
  v.setUint16(ra + 12, inUse, true);
  v.setUint16(ra + 14, flags, true);
  v.setUint32(ra + 16, 64 - 19, true); // sequence number bits for a 2 MiB journal
  v.setUint16(ra + 20, 0xe0, true); // restart area length: to the client array's end
  v.setUint16(ra + 22, 0x40, true); // client array offset
  v.setBigInt64(ra + 24, BigInt(JOURNAL), true);
  v.setUint16(ra + 36, 0x30, true); // log record header length
  v.setUint16(ra + 38, 0x40, true); // log page data offset
  const client = ra + 0x40;
  v.setBigUint64(client, BigInt(lsn), true);
  v.setBigUint64(client + 8, BigInt(lsn), true);
  v.setUint16(client + 16, 0xffff, true);
  v.setUint16(client + 18, 0xffff, true);
  v.setUint32(client + 0x1c, 8, true);
  [..."NTFS"].forEach((c, i) => v.setUint16(client + 0x20 + 2 * i, c.charCodeAt(0), true));
  const usn = 1;
  v.setUint16(0x1e, usn, true);
  for (let s = 0; s < PAGE / 512; s++) {
    const end = (s + 1) * 512 - 2;
    v.setUint16(0x20 + 2 * s, v.getUint16(end, true), true);
    v.setUint16(end, usn, true);
  }
  return page;
}

/** A journal of `pages` (each a page's bytes or null for an empty one), the rest empty. */
function journal(pages: (Uint8Array | null)[]): Uint8Array {
  const bytes = new Uint8Array(JOURNAL).fill(0xff);
  pages.forEach((p, i) => p && bytes.set(p, i * PAGE));
  return bytes;
}

const judge = (bytes: Uint8Array) =>
  journalState(bytesReader(bytes), 0, PAGE, [[0, bytes.length / PAGE]], bytes.length);

Deno.test("journalState: empty is clean; the newer restart page decides otherwise", async () => {
  assert.equal(await judge(journal([])), "clean");
  const open = restartPage(0x2000, 0, 0);
  assert.equal(await judge(journal([open, open])), "unclean");
  assert.equal(await judge(journal([restartPage(0x2000, 0, 2)])), "clean", "VOLUME_IS_CLEAN");
  assert.equal(await judge(journal([restartPage(0x2000, 0xffff, 0)])), "clean", "no client");
  const closed = restartPage(0x3000, 0, 2);
  assert.equal(await judge(journal([open, closed])), "clean", "the second is newer");
  assert.equal(await judge(journal([closed, restartPage(0x4000, 0, 0)])), "unclean");
  // A chkdsk'ed restart page counts as one.
  const chkd = restartPage(0x2000, 0, 0);
  chkd.set(new TextEncoder().encode("CHKD"));
  assert.equal(await judge(journal([chkd])), "unclean");
});

Deno.test("journalState: a journal neither empty nor with a restart page is not understood", async () => {
  const records = new Uint8Array(PAGE);
  records.set(new TextEncoder().encode("RCRD"));
  await assert.rejects(judge(journal([records])), NotUnderstood);
  await assert.rejects(judge(journal([new Uint8Array(PAGE)])), /has no restart page/);
  const bad = restartPage(0x2000, 0, 0);
  new DataView(bad.buffer).setUint16(24, 600, true);
  await assert.rejects(judge(journal([bad])), /restart page at 0 has its area at 600/);
});

/** The $LogFile's first cluster on an NTFS image, as ntfsinfo (ntfs-3g's tool) reports it. */
async function journalCluster(image: string): Promise<number> {
  const out = await run("ntfsinfo", ["-v", "-i", "2", image]);
  const runs = /Runlist:\s+VCN\s+LCN\s+Length\s+0x0\s+(0x[0-9a-f]+)/i.exec(out);
  if (!runs) throw new Error(`ntfsinfo shows no $LogFile runlist:\n${out}`);
  return Number(runs[1]);
}

/** What ntfs-3g says when it mounts `image` read-write (a copy: it resets what it judges). */
async function ntfs3gSays(image: string, tmp: string): Promise<string> {
  const copy = join(tmp, "mount-copy.img");
  await Deno.copyFile(image, copy);
  const dir = await Deno.makeTempDir({ dir: tmp });
  const r = await new Deno.Command("ntfs-3g", { args: [copy, dir], stderr: "piped" }).output();
  if (r.success) await run("fusermount", ["-u", dir]).catch(() => run("umount", [dir]));
  await Deno.remove(dir);
  await Deno.remove(copy);
  return new TextDecoder().decode(r.stderr);
}

Deno.test("NTFS left open by Windows (Fast Startup) is kept whole, and says why; ntfs-3g calls it unclean", () =>
  withTempDir(async (tmp) => {
    const image = join(tmp, "ntfs.img");
    await makeNtfs(image, 32 * MIB, fillPlan(21, 6, 300_000), tmp);
    const at = (await journalCluster(image)) * PAGE; // mkntfs: 4 KiB clusters
    const write = async (page: Uint8Array) => {
      using f = await Deno.open(image, { write: true });
      for (const pos of [0, PAGE]) {
        await f.seek(at + pos, Deno.SeekMode.Start);
        await f.write(page);
      }
    };
    const layout = async () => {
      const bytes = await Deno.readFile(image);
      return (await analyzeDisk(bytesReader(bytes), bytes.length)).volumes[0];
    };
    assert.equal((await layout()).note, undefined, "mkntfs leaves the journal empty");

    await write(restartPage(0x2000, 0, 0));
    const open = await layout();
    assert.equal(open.fs, "ntfs");
    assert.match(open.note ?? "", /did not shut down cleanly.*shutdown \/s \/t 0/);
    assert.equal(open.free, 0, "nothing treated as free");
    assert.match(await ntfs3gSays(image, tmp), /unclean file system/);

    await write(restartPage(0x3000, 0, 2)); // what a full shutdown leaves
    const closed = await layout();
    assert.equal(closed.note, undefined);
    assert.ok(closed.free > 0);
    assert.doesNotMatch(await ntfs3gSays(image, tmp), /unclean/);
  }));
