// Log lines to a stream without ever holding the caller's thread. `console.error` writes to
// stderr synchronously: when whatever reads the master's stderr (a pipe to a busy process, a
// slow terminal, journald under load) falls behind, the pipe fills and every log line waits for
// it. At 1,500 PCs finishing at once that held the master's one thread for 2.5 s at a time
// (bench:dashboard's profile: op_print), and its control sessions and HTTP requests with it.
// Here a line is queued and the queue written by one asynchronous write at a time, which Deno
// does off the thread; a backlog past `maxQueued` bytes drops lines (counted, said once the
// writer catches up) rather than growing without bound. What is still queued when the process
// exits is written synchronously then.

export interface LineSink {
  (line: string): void;
  /** Resolves once every line queued so far is written (or dropped). */
  flush(): Promise<void>;
}

interface Writer {
  write(bytes: Uint8Array): Promise<number>;
  writeSync(bytes: Uint8Array): number;
}

export function queuedSink(
  to: Writer = Deno.stderr,
  maxQueued = 8 * 1024 * 1024,
): LineSink {
  const encoder = new TextEncoder();
  let queue: string[] = [];
  let queued = 0;
  let dropped = 0;
  let writing: Promise<void> | null = null;

  const writeAll = async (bytes: Uint8Array) => {
    for (let off = 0; off < bytes.length;) off += await to.write(bytes.subarray(off));
  };
  const drain = async () => {
    while (queue.length) {
      if (dropped) queue.push(`log.dropped lines=${dropped} (the log's reader fell behind)\n`);
      dropped = 0;
      const text = queue.join("");
      queue = [];
      queued = 0;
      await writeAll(encoder.encode(text)).catch(() => {});
    }
    writing = null;
  };
  const sink = ((line: string) => {
    if (queued + line.length > maxQueued) {
      dropped++;
      return;
    }
    queue.push(line + "\n");
    queued += line.length + 1;
    writing ??= Promise.resolve().then(drain);
  }) as LineSink;
  sink.flush = async () => {
    while (writing) await writing;
  };
  // At exit nothing waits for a promise: what is queued goes out synchronously.
  globalThis.addEventListener("unload", () => {
    const bytes = encoder.encode(queue.join(""));
    queue = [];
    try {
      for (let off = 0; off < bytes.length;) off += to.writeSync(bytes.subarray(off));
    } catch { /* the reader is gone */ }
  });
  return sink;
}
