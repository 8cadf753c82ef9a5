import assert from "node:assert/strict";
import { queuedSink } from "./log_sink.ts";

/** A writer that takes at most `chunk` bytes a write, each write held until `release()`. */
function slowWriter(chunk = 1 << 20) {
  const written: Uint8Array[] = [];
  let open: (() => void)[] = [];
  return {
    text: () => new TextDecoder().decode(new Uint8Array(written.flatMap((b) => [...b]))),
    release() {
      const now = open;
      open = [];
      for (const f of now) f();
    },
    pending: () => open.length,
    write(bytes: Uint8Array): Promise<number> {
      const n = Math.min(chunk, bytes.length);
      written.push(bytes.slice(0, n));
      return new Promise((resolve) => open.push(() => resolve(n)));
    },
    writeSync(bytes: Uint8Array): number {
      written.push(bytes.slice());
      return bytes.length;
    },
  };
}

Deno.test("queuedSink: a line returns at once; lines go out in order, one write at a time", async () => {
  const w = slowWriter(5);
  const sink = queuedSink(w);
  sink("a=1");
  sink("b=2");
  await Promise.resolve();
  await Promise.resolve();
  // One write in flight, its first 5 bytes taken; the caller was never held.
  assert.equal(w.pending(), 1);
  sink("c=3");
  const flushed = sink.flush();
  for (let i = 0; i < 10; i++) {
    w.release();
    await new Promise((r) => setTimeout(r, 0));
  }
  await flushed;
  assert.equal(w.text(), "a=1\nb=2\nc=3\n");
});

Deno.test("queuedSink: past the backlog lines are dropped, counted, and the count said", async () => {
  const w = slowWriter();
  const sink = queuedSink(w, 12);
  sink("first"); // queued, then taken by the write
  await Promise.resolve();
  await Promise.resolve();
  sink("0123456789"); // 11 bytes: queued
  sink("dropped-1");
  sink("dropped-2");
  const flushed = sink.flush();
  for (let i = 0; i < 10; i++) {
    w.release();
    await new Promise((r) => setTimeout(r, 0));
  }
  await flushed;
  assert.equal(
    w.text(),
    "first\n0123456789\nlog.dropped lines=2 (the log's reader fell behind)\n",
  );
});
