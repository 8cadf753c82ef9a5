// The client's ticker follows the master's pace: the welcome's interval, a longer one in "pace",
// the half second again from a master that names none, junk ignored, out-of-range held in bounds.
import assert from "node:assert/strict";
import type { MasterMessage } from "../protocol/mod.ts";
import { PROGRESS_MS, ReportTicker } from "./report_ticker.ts";

// The ticker reads only a welcome's interval (the rest: control_session_test.ts).
const welcome = (progressMs?: number) =>
  ({ type: "welcome", ...(progressMs !== undefined ? { progressMs } : {}) }) as MasterMessage;

Deno.test("report ticker: one timer at a time, at the interval the master last named", () => {
  const started: number[] = [];
  let running = 0;
  const every = (ms: number) => (started.push(ms), running++, () => void running--);
  const t = new ReportTicker(() => {}, every);
  t.follow(welcome(1500));
  t.follow({ type: "pace", progressMs: 3000 });
  t.follow({ type: "pace", progressMs: 3000 }); // the same: the timer is kept
  t.follow({ type: "pace", progressMs: "fast" } as unknown as MasterMessage);
  t.follow({ type: "serve", clients: [] });
  assert.equal(t.ms, 3000);
  t.follow(welcome()); // a master from before the pace (a reconnect after a downgrade)
  assert.equal(t.ms, PROGRESS_MS);
  t.follow({ type: "pace", progressMs: 10 });
  t.follow({ type: "pace", progressMs: 1e9 });
  assert.deepEqual(started, [500, 1500, 3000, 500, 100, 60_000]);
  assert.equal(running, 1);
  t.stop();
  assert.equal(running, 0);
});
