// Hostile LAN, frames: a control frame whose header announces 1 GiB, one of 60 MiB (just under
// Deno's own 64 MiB limit, which its WebSocket read whole before ours saw it) and a message sent
// in 8 KiB fragments far past the 16 KiB limit (which Deno's put together without any bound) are
// refused with 1009 at the header that passes the limit: the master reads little more than the
// limit, its memory does not grow, it still answers, and the honest PCs image beside them.
import assert from "node:assert/strict";
import { assertHonestImaged, assertMasterAnswers, hostileLab, startHonest } from "./hostile_kit.ts";
import { floodFrame, type FloodResult, frameHead } from "./hostile_ws.ts";
import { logEvents } from "./lab_kit.ts";

const MiB = 1 << 20;
const LIMIT = 16 * 1024;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return Number(m![1]) * 1024;
}

/** One frame announcing `announce` bytes, then up to `send` bytes of its payload. */
function* oneFrame(announce: number, send: number) {
  yield frameHead(2, announce);
  const piece = new Uint8Array(64 * 1024);
  for (let n = 0; n < send; n += piece.length) yield piece;
}

/** A text message in fragments of `piece` bytes, `send` bytes in all, never ended. */
function* fragments(piece: number, send: number) {
  const payload = new Uint8Array(piece).fill(0x61);
  for (let n = 0; n < send; n += piece) {
    yield frameHead(n === 0 ? 1 : 0, piece, false);
    yield payload;
  }
}

Deno.test("hostile: a 1 GiB frame, a 60 MiB frame and a fragmented message past 16 KiB are refused at the header (1009)", async () => {
  const lab = await hostileLab(2 * MiB);
  try {
    startHonest(lab, ["pc1", "pc2"]);
    const pid = lab.procs.procs.get("master")!.child.pid;
    const attacks: [string, string, () => Iterable<Uint8Array>][] = [
      ["1 GiB announced", "127.0.0.61", () => oneFrame(2 ** 30, 256 * MiB)],
      ["60 MiB frame", "127.0.0.62", () => oneFrame(60 * MiB, 60 * MiB)],
      ["8 KiB fragments", "127.0.0.63", () => fragments(8192, 256 * MiB)],
    ];
    const before = rssOf(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 20);
    const results: FloodResult[] = [];
    try {
      for (const [, from, attack] of attacks) results.push(await floodFrame(lab.url, from, attack));
      // And two of each at once, from one address.
      const many = await Promise.all(
        Array.from({ length: 6 }, (_, i) => floodFrame(lab.url, "127.0.0.64", attacks[i % 3][2])),
      );
      results.push(...many);
    } finally {
      clearInterval(sampler);
    }
    const grew = (peak - before) / MiB;
    const refused = logEvents(await lab.procs.logText("master"), "master.control.refused");
    console.log(
      `RSS ${(before / MiB).toFixed(1)} -> peak ${(peak / MiB).toFixed(1)} MiB; ` +
        results.slice(0, 3).map((r, i) =>
          `${attacks[i][0]}: code ${r.closeCode}, socket took ${(r.written / MiB).toFixed(2)} MiB`
        ).join("; ") + `; master read per connection: ${refused.map((f) => f.read).join(" ")}`,
    );
    for (const [i, r] of results.entries()) {
      const what = attacks[i < 3 ? i : (i - 3) % 3][0];
      assert.ok(r.closed, `${what}: the master closed the connection`);
      assert.equal(r.closeCode, 1009, `${what}: closed with 1009 (message too big)`);
      // What the attacker's socket took is at most what loopback's buffers hold, not the frame.
      assert.ok(r.written < 16 * MiB, `${what}: ${r.written} bytes taken`);
    }
    // The master itself read at most the limit and one read (4 KiB) of each connection.
    assert.equal(refused.length, results.length, "one refusal logged per attack");
    for (const f of refused) {
      assert.equal(f.code, "1009");
      assert.match(f.reason, /^Message (of \d+ bytes or more )?(is )?larger than 16384 bytes$/);
      assert.ok(Number(f.read) <= LIMIT + 8192, `read ${f.read} bytes of one connection`);
    }
    // Before the master read frames itself this run took it from 62 MiB to 891 MiB. What is read
    // is bounded above (the limit and one read per connection); what is left here is the heap's
    // own growth with the honest run beside: 1-8 MiB alone, 20 MiB once in the whole suite at
    // once (V8's young generation grows with the allocation rate of a loaded machine).
    assert.ok(grew < 32, `the master's RSS grew ${grew.toFixed(1)} MiB during the attacks`);
    await assertMasterAnswers(lab);
    await assertHonestImaged(lab, ["pc1", "pc2"]);
  } finally {
    await lab.close();
  }
});
