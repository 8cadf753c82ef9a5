// Which PCs the cascade should move out of the way, from what the master measures. Pure: the
// scheduler gives it a view of the room and the time, and carries the moves out itself.
//
// A chain runs at its slowest link and a relay that stops stops everyone below it, so a PC that
// receives clearly slower than it could, or not at all, must not sit above anyone. Such a PC is
// DEMOTED, once: it becomes a leaf (never a relay again), its downstream is re-attached to its
// own upstream, and it waits for a tail to serve it. Three rules find it:
//
// - probe: a client reports in its hello how fast it fetched the master's probe (a fixed blob,
//   one client at a time, before any chain exists). One far below the median probe is a leaf
//   from the start, so it never sits above anyone at all (judged while it serves nobody; a
//   relay's hop is measured instead). This is the rule that makes a
//   slow port cost the others nothing: any rule that has to watch the chain first costs the
//   whole room the watching time (a 10 Mbit/s PC in a chain of 100 Mbit/s PCs holds everyone
//   below it to a tenth for as long as the watching takes).
// - slow: over the last `window` seconds of its hop, a client delivered less than `slowShare`
//   of its upstream's rate (or, under a source or a finished PC, of the fastest client's), the
//   reference having carried at least `minBytes` in that window (fewer chunks than that and one
//   chunk more or less is most of the rate).
//   Comparing a hop with the hop above it finds the PC that causes the slowness: every PC below
//   a slow one is just as slow, but only the slow one is slower than its own upstream.
// - stalled: its upstream's bytes (or, under a source or a finished PC, another client of the
//   same server's) grew `stallAfter` seconds ago or more, and its own did not grow since then.
//   Everyone below a stopped relay stops too, but only the stopped one has a moving upstream
//   (the head of the stall is blamed, never those below it);
//   and timing from the upstream's growth, not from the client's own last one, keeps a slow
//   source (a chunk every few seconds) from looking like a stop. Its silence counts only from
//   when the evidence was heard at least every `stallAfter`: when reports from the
//   whole room come late at once (a busy master or network; bench:dashboard's thread of 1,500
//   emulated PCs ran its timers 1-2 s late in the finishing burst), whoever reported just
//   before its upstream looked stalled, and a quarter of the room was demoted in one second.
//   And it counts only from the latest re-attachment above it: once a stopped relay is
//   demoted and its downstream moved, the PCs below wait for bytes to come down the chain
//   again, and whichever had reported just before its upstream's bytes in flight drained
//   looked stalled (bench:lab's stall room: a PC three below the stopped one demoted 0.26 s
//   after the move, queued below the stopped PC, and the room finished with it, 5 s late).
//
// The room, not a PC: on a machine short of CPU every hop wobbles and relays stop for seconds
// (measured in the emulated lab with the host at load 9 on 2 cores: hops between 1 and 12 MB/s,
// stops of 2-9 s). So a slow hop must stay slow for half a window more before it counts, and
// the in-run rules (slow, stalled) demote at most a quarter of the room's PCs: past that it is
// the room that is slow, and moving PCs only breaks the chain.
//
// No flapping: a PC is demoted at most once and never promoted back; and a hop is blamed at most
// once (after one demotion under upstream U, another client under U that looks slow or stalled
// says U is the problem, and moving more PCs away from U would only shuffle the chain). A chain's
// head under a source with nothing to compare to (one chain, no other clients) is not judged.
//
// Thresholds, from the emulated lab (LAB-FACTS.md; 100 Mbit/s ports, tbf, 1 MiB chunks), for
// reports every half second; a room past 500 PCs reports less often and the time-based ones
// (window, stallAfter, scanEvery) stretch with it (report_pace.ts):
// - probeShare 0.25 of the median, and only when the median probe is below probeCeiling
//   (200 MB/s): a port negotiated down runs at a tenth (10 of 100 Mbit/s, 100 of 1000), while
//   a 1 MiB probe that takes under 5 ms (faster than any 1 Gbit/s port: loopback, one host) is
//   timer and scheduler noise, which on this machine spread probes 2-4x apart.
// - minBytes 8 MiB: 8 chunks in the window, so one chunk more or less is 12 %.
// - slowShare 0.5: hops in a flat chain deliver within a few % of each other (11.9 MB/s each in
//   a ring of 12 hosts all sending and receiving at once); a port negotiated down to 10 Mbit/s
//   delivers 0.1 x. Half sits far from both.
// - window 2 s: 24 chunks at 12 MB/s, so one chunk more or less is 4 % (progress comes every
//   0.5 s); 2.4 chunks at 10 Mbit/s, still clearly below half.
// - stallAfter 1 s: progress comes every 0.5 s, a chunk at full rate takes 0.09 s, and a relay
//   fetches what its upstream verified within a chunk time or two; so a client whose report lags
//   its upstream's by the report phase (up to 0.5 s) still shows its growth well within 1 s. A
//   stop is then seen 1-1.5 s after it happens (the upstream's next report plus 1 s), so the
//   PCs below a stopped one lose about that long (the goal: within 2 s of a run without it).
import type { HopMeter } from "./hop_meter.ts";

export interface AdaptConfig {
  /** A hop delivering less than this share of its reference rate is slow. */
  slowShare: number;
  /** A probe below this share of the median probe is slow... */
  probeShare: number;
  /** ...when the median probe is below this (bytes/s); above, probes are noise. */
  probeCeiling: number;
  /** The reference hop must have carried this many bytes in the window to judge against it. */
  minBytes: number;
  /** Seconds a hop's rate is measured over before it is judged. */
  window: number;
  /** Seconds without a byte (while the upstream moves) that make a client stalled. */
  stallAfter: number;
  /** On progress reports and ticks, the in-run rules look again at most this often (seconds):
   * a look costs O(PCs), and on every report that is O(PCs²) a second (bench:dashboard). */
  scanEvery: number;
}

export const DEFAULT_ADAPT: AdaptConfig = {
  slowShare: 0.5,
  probeShare: 0.25,
  probeCeiling: 200e6,
  minBytes: 8 * 1024 * 1024,
  window: 2,
  stallAfter: 1,
  scanEvery: 0.25,
};

export type DemotionReason = "probe" | "slow" | "stalled";

export interface Demotion {
  id: string;
  reason: DemotionReason;
  /** Why, in words and figures, for the log. */
  detail: string;
  /** The rate it was found at, bytes/s (its probe; its hop's; 0 when stalled): among leaves,
   * one serves only those no faster than itself, so a slow one never sits above a faster one. */
  rate: number;
}

export interface RoomView {
  at: number;
  /** Client -> when it was first found slow (kept by the caller, updated here). */
  slowSince: Map<string, number>;
  /** Clients the run has seen, and how many the in-run rules demoted (at most a quarter). */
  seen: number;
  inRun: number;
  /** Receiving client -> the server it fetches from. */
  upstream: ReadonlyMap<string, string>;
  /** Every client owed an image (waiting or receiving). */
  clients: readonly string[];
  leaves: ReadonlySet<string>;
  /** Upstreams a demotion was already made under. */
  blamed: ReadonlySet<string>;
  meter: HopMeter;
  /** Client -> bytes/s of its probe. */
  probes: ReadonlyMap<string, number>;
}

const mbs = (r: number) => `${(r / 1e6).toFixed(2)} MB/s`;

/** The first PC to demote now, or null. One at a time: each demotion changes the chain. */
export function nextDemotion(v: RoomView, c: AdaptConfig): Demotion | null {
  return probeDemotion(v, c) ?? hopDemotion(v, c);
}

/** The probe rule: reads the clients, their probes and links, never the time or the meter. */
export function probeDemotion(
  v: Pick<RoomView, "clients" | "probes" | "leaves" | "upstream">,
  c: AdaptConfig,
): Demotion | null {
  // It runs on every event but a report: with fewer than two probes, or a median above the
  // ceiling (loopback, one host), nobody is slow, and that is known without the loop.
  if (v.probes.size < 2) return null;
  const probes = v.clients.map((id) => v.probes.get(id)).filter((p) => p !== undefined)
    .sort((a, b) => a - b);
  if (probes.length < 2) return null;
  const median = probes[Math.floor(probes.length / 2)];
  if (median >= c.probeCeiling) return null;
  const serving = new Set(v.upstream.values());
  for (const id of v.clients) {
    const p = v.probes.get(id);
    if (v.leaves.has(id) || p === undefined) continue;
    // Only while it serves nobody (waiting, or the tail of a chain): below that its hop is
    // measured (the in-run rules). A later median (PCs joining with faster probes) must not pull
    // a relay out of its chain: that is how loopback noise (probes 7-76 MB/s at load 5) demoted
    // a relay as it finished and sent it to its own former downstream.
    if (serving.has(id)) continue;
    if (!(p < c.probeShare * median)) continue;
    return {
      id,
      reason: "probe",
      detail: `probe ${mbs(p)} < ${c.probeShare} x the median ${mbs(median)}`,
      rate: p,
    };
  }
  return null;
}

/** The in-run rules (slow, stalled): they read the meter at time `at`. */
export function hopDemotion(
  v: Omit<RoomView, "clients" | "probes">,
  c: AdaptConfig,
): Demotion | null {
  const { at, meter } = v;
  if (v.inRun >= Math.max(1, Math.floor(v.seen / 4))) return null;
  // Did `other` grow at least stallAfter ago, after `since`? Then it moved while `id` did not.
  // Counted from when `other` was last heard again after a silence of its own: a silence the
  // room shares says nothing of `id`.
  const movedSince = (other: string, since: number) => {
    const heard = meter.heardSince(other, at, c.stallAfter);
    if (heard === null) return false;
    const g = meter.firstGrowthAfter(other, Math.max(since, heard));
    return g !== null && g <= at - c.stallAfter;
  };
  // The latest hop start of each receiving client's ancestors and its own (memoized: O(PCs)).
  const restarted = new Map<string, number>();
  const restartAbove = (id: string): number => {
    const path: string[] = [];
    let t = -Infinity;
    for (let x: string | undefined = id; x !== undefined && v.upstream.has(x);) {
      const known = restarted.get(x);
      if (known !== undefined) {
        t = known;
        break;
      }
      path.push(x);
      x = v.upstream.get(x);
      if (path.length > v.upstream.size) break; // never a cycle; never loop on one anyway
    }
    for (let i = path.length - 1; i >= 0; i--) {
      t = Math.max(t, meter.hopStart(path[i]) ?? -Infinity);
      restarted.set(path[i], t);
    }
    return t;
  };
  let fastest: { rate: number; bytes: number } | null = null;
  for (const id of v.upstream.keys()) {
    const m = meter.measure(id, at);
    if (m && (!fastest || m.rate > fastest.rate)) fastest = m;
  }
  for (const [id, up] of v.upstream) {
    if (v.leaves.has(id) || v.blamed.has(up)) continue;
    const upReceiving = v.upstream.has(up);
    const own = meter.lastSign(id);
    const sign = own === null ? null : Math.max(own, restartAbove(id));
    if (sign !== null && sign <= at - c.stallAfter) {
      const evidence = upReceiving
        ? (movedSince(up, sign) ? up : undefined)
        : [...v.upstream].find(([o, s]) => s === up && o !== id && movedSince(o, sign))?.[0];
      if (evidence !== undefined) {
        return {
          id,
          reason: "stalled",
          detail: `no byte for ${(at - sign).toFixed(2)} s while "${evidence}" moved`,
          rate: 0,
        };
      }
    }
    const r = meter.rate(id, at);
    const m = upReceiving ? meter.measure(up, at) : fastest;
    const ref = m && m.bytes >= c.minBytes ? m.rate : null;
    const slow = r !== null && ref !== null && r < c.slowShare * ref;
    if (!slow) {
      v.slowSince.delete(id);
      continue;
    }
    if (!v.slowSince.has(id)) v.slowSince.set(id, at);
    if (at - v.slowSince.get(id)! >= c.window / 2) {
      return {
        id,
        reason: "slow",
        detail: `${mbs(r!)} < ${c.slowShare} x ${upReceiving ? `"${up}"` : "the fastest"} ${
          mbs(ref!)
        }`,
        rate: r!,
      };
    }
  }
  return null;
}
