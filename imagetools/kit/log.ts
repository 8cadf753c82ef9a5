// Structured log lines: `event key=value ...`, one logger per role, injected (never in the core).

export type LogFields = Record<string, string | number | boolean | undefined | null>;
export type Logger = (event: string, fields?: LogFields) => void;

function quote(v: string): string {
  return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
}

export function formatLogLine(role: string, event: string, fields: LogFields = {}): string {
  const parts = [`${role}.${event}`];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === null) continue;
    parts.push(`${k}=${quote(String(v))}`);
  }
  return parts.join(" ");
}

/** A logger that writes to stderr with an ISO time, or to `sink` (tests). */
export function makeLogger(role: string, sink?: (line: string) => void): Logger {
  const out = sink ?? ((line: string) => console.error(`${new Date().toISOString()} ${line}`));
  return (event, fields) => out(formatLogLine(role, event, fields));
}

export const silentLogger: Logger = () => {};
