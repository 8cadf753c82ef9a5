// Sizes and durations as admins type them ("1MiB", "256M", "6GB", "20m", "1.5s"). Pure.

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** Parse a byte size: bare numbers are bytes, K/M/G/T and KiB.. are binary, KB/MB.. decimal. */
export function parseSize(text: string, what = "size"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new TypeError(
      `Invalid ${what} "${text}": expected a number with an optional unit (K, M, G, T, KiB, MB, ...)`,
    );
  }
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`Invalid ${what} "${text}": too large`);
  return bytes;
}

const DURATION_UNITS: Record<string, number> = {
  "": 1,
  ms: 0.001,
  s: 1,
  m: 60,
  min: 60,
  h: 3600,
};

/** Parse a duration into seconds: bare numbers are seconds; ms, s, m, h suffixes. */
export function parseDuration(text: string, what = "duration"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? DURATION_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new TypeError(
      `Invalid ${what} "${text}": expected a number with an optional unit (ms, s, m, h)`,
    );
  }
  return Number(m[1]) * unit;
}

/** Parse a whole number within bounds, naming the option in the error. */
export function parseCount(text: string, what: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  if (!/^\s*\d+\s*$/.test(text)) {
    throw new TypeError(`Invalid ${what} "${text}": not a whole number`);
  }
  const n = Number(text);
  if (n < min || n > max) throw new RangeError(`Invalid ${what} "${text}": must be ${min}..${max}`);
  return n;
}

/** Parse a rate such as "100mbit", "1gbit", "12MB/s" into bytes per second. */
export function parseRate(text: string, what = "rate"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(bit|bps|b\/s|B\/s|B)?\s*$/i.exec(text);
  if (!m) {
    throw new TypeError(`Invalid ${what} "${text}": expected e.g. "100mbit", "1gbit" or "12MB/s"`);
  }
  const scale = { "": 1, k: 1e3, m: 1e6, g: 1e9 }[m[2].toLowerCase() as "" | "k" | "m" | "g"];
  const bits = (m[3] ?? "bit").toLowerCase().startsWith("bit") || m[3]?.toLowerCase() === "bps";
  return Number(m[1]) * scale / (bits ? 8 : 1);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** "1h02m", "3m05s", "12.3s" */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : `${m}m${String(r).padStart(2, "0")}s`;
}
