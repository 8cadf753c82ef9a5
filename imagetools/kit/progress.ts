// Progress for long jobs: a redrawn bar on a terminal, a plain line every few seconds when
// piped, nothing when quiet. The clock and the sink are injected so the core stays testable.

import { formatBytes, formatDuration, formatRate } from "./units.ts";

export type ProgressMode = "bar" | "lines" | "quiet";

export interface ProgressOptions {
  label: string;
  total: number;
  mode: ProgressMode;
  write?: (text: string) => void;
  now?: () => number;
  /** Seconds between plain lines (default 2). */
  lineInterval?: number;
  /** Columns for the bar (default from the terminal, else 80). */
  columns?: number;
}

/** Pick "bar" on a terminal, "lines" otherwise, "quiet" when asked. */
export function progressMode(quiet: boolean, rid: { isTerminal(): boolean } = Deno.stderr) {
  if (quiet) return "quiet" as const;
  return rid.isTerminal() ? "bar" as const : "lines" as const;
}

export function renderProgressLine(
  label: string,
  done: number,
  total: number,
  elapsed: number,
): string {
  const rate = elapsed > 0 ? done / elapsed : 0;
  const eta = rate > 0 ? (total - done) / rate : Infinity;
  const pct = total > 0 ? (100 * done) / total : 100;
  return `${label} ${pct.toFixed(1)}% ${formatBytes(done)}/${formatBytes(total)} ${
    formatRate(rate)
  } ETA ${formatDuration(eta)}`;
}

export function renderBar(fraction: number, width: number): string {
  const f = Math.max(0, Math.min(1, fraction));
  const full = Math.round(f * width);
  return `[${"#".repeat(full)}${".".repeat(width - full)}]`;
}

export class Progress {
  #o: Required<Omit<ProgressOptions, "columns">> & { columns: number };
  #start: number;
  #lastDraw = -Infinity;
  #done = 0;
  #encoder = new TextEncoder();

  constructor(o: ProgressOptions) {
    const write = o.write ?? ((t: string) => {
      Deno.stderr.writeSync(this.#encoder.encode(t));
    });
    let columns = o.columns ?? 80;
    if (o.columns === undefined && o.mode === "bar") {
      try {
        columns = Deno.consoleSize().columns;
      } catch { /* not a terminal after all */ }
    }
    this.#o = {
      label: o.label,
      total: o.total,
      mode: o.mode,
      write,
      now: o.now ?? (() => performance.now() / 1000),
      lineInterval: o.lineInterval ?? 2,
      columns,
    };
    this.#start = this.#o.now();
  }

  get done() {
    return this.#done;
  }

  /** Seconds since the job started. */
  elapsed() {
    return this.#o.now() - this.#start;
  }

  update(done: number) {
    this.#done = done;
    const { mode, now, lineInterval } = this.#o;
    if (mode === "quiet") return;
    const t = now();
    const interval = mode === "bar" ? 0.1 : lineInterval;
    if (t - this.#lastDraw < interval) return;
    this.#lastDraw = t;
    this.#draw(false);
  }

  add(bytes: number) {
    this.update(this.#done + bytes);
  }

  /** Final line (always drawn unless quiet). */
  finish(summary?: string) {
    if (this.#o.mode === "quiet") return;
    this.#draw(true, summary);
  }

  #draw(final: boolean, summary?: string) {
    const { label, total, mode, write, columns } = this.#o;
    const text = summary ?? renderProgressLine(label, this.#done, total, this.elapsed());
    if (mode === "lines") {
      write(text + "\n");
      return;
    }
    const barWidth = Math.max(10, Math.min(40, columns - text.length - 3));
    const line = summary ? text : `${renderBar(total ? this.#done / total : 1, barWidth)} ${text}`;
    write(`\r\x1b[2K${line.slice(0, columns - 1)}${final ? "\n" : ""}`);
  }
}
