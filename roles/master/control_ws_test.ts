// The control socket's idle check (pure): ping a silent peer, close one that stays silent after
// the ping, and never close one that answered, however late the check runs.
import assert from "node:assert/strict";
import { idleVerdict } from "./control_ws.ts";

const HALF = 30_000;

Deno.test("idle check: a peer heard within half the timeout is left alone; a silent one pinged", () => {
  assert.equal(idleVerdict(40_000, 15_000, null, HALF), "ok");
  assert.equal(idleVerdict(45_000, 15_000, null, HALF), "ping");
});

Deno.test("idle check: a pong just after the ping keeps the peer, though the next check is late", () => {
  // Pinged at 60 s, pong at 60.005 s, the next check 5 ms late at 90.010 s: the pong is 30.005 s
  // old, yet it came after the ping.
  assert.equal(idleVerdict(90_010, 60_005, 60_000, HALF), "ok");
  // Nothing since the ping: closed.
  assert.equal(idleVerdict(90_010, 45_000, 60_000, HALF), "close");
});

Deno.test("idle check: an idle peer that answers every ping is pinged every other check, never closed", () => {
  let lastSeen = 0, pingedAt: number | null = null;
  const verdicts: string[] = [];
  for (let k = 1; k <= 6; k++) {
    const now = k * HALF + k * 7; // every check a little later than the one before
    const v = idleVerdict(now, lastSeen, pingedAt, HALF);
    verdicts.push(v);
    if (v === "ok") pingedAt = null;
    if (v === "ping") pingedAt = now, lastSeen = now + 3; // the pong, 3 ms later
  }
  assert.deepEqual(verdicts, ["ping", "ok", "ping", "ok", "ping", "ok"]);
});
