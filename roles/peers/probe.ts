// The probe: before its hello a PC fetches a fixed blob from the master (one PC at a time, the
// master queues them) and reports how fast it came, so the master knows a slow port before it
// builds any chain (roles/master/adapt.ts: why that matters). Timed from the response's
// headers to its last byte, so the wait in the master's queue does not count.
import type { Logger } from "../../imagetools/kit/mod.ts";
import { PROBE_PATH, PROBE_TURN_HEADER } from "../protocol/mod.ts";

/** The blob is here: the next PC's turn may begin (a master that names no turn ends it itself). */
async function endTurn(url: string, token: string | null, log: Logger) {
  if (!token) return;
  try {
    const done = await fetch(`${url}?turn=${encodeURIComponent(token)}`, {
      method: "POST",
      signal: AbortSignal.timeout(5_000),
    });
    await done.body?.cancel();
  } catch (err) {
    log("probe-done-failed", { url, error: (err as Error).message });
  }
}

/** Bytes/s of the probe fetch, or undefined when the master has none (older, or busy). */
export async function probeMaster(
  masterUrl: string,
  log: Logger,
  timeoutMs = 30_000,
): Promise<number | undefined> {
  const url = new URL(PROBE_PATH, masterUrl).href;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      log("probe-skipped", { url, status: res.status });
      return undefined;
    }
    const t0 = performance.now();
    let bytes = 0;
    for await (const part of res.body) bytes += part.byteLength;
    const seconds = (performance.now() - t0) / 1000;
    await endTurn(url, res.headers.get(PROBE_TURN_HEADER), log);
    const rate = bytes / Math.max(seconds, 1e-4);
    log("probe", { bytes, seconds: seconds.toFixed(3), rate: Math.round(rate) });
    return rate;
  } catch (err) {
    log("probe-skipped", { url, error: (err as Error).message });
    return undefined;
  }
}
