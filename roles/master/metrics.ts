// /metrics in the Prometheus text format (version 0.0.4). Pure: the counters are fed the
// master's events, the text is rendered from the live status plus those counters.
import type { EventRecord, PeerState } from "./core.ts";
import type { LiveStatus } from "./live_status.ts";

/** Every state, so that each series exists from the start (a missing series reads as "no data"). */
export const PEER_STATES: readonly PeerState[] = [
  "booting",
  "waiting",
  "receiving",
  "verifying",
  "serving",
  "done",
  "failed",
  "left",
];

/** Histogram buckets (seconds) for the time from a client's hello to its first assignment. */
export const ASSIGN_WAIT_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600];

/** Counters that the status alone cannot give: they accumulate over the master's events. */
export class RunCounters {
  /** Client failures by reason: fetches that stopped, and read-backs that found bad chunks. */
  readonly failures = new Map<string, number>();
  /** Cumulative counts per bucket of ASSIGN_WAIT_BUCKETS (plus +Inf as the last). */
  readonly waitBuckets: number[] = ASSIGN_WAIT_BUCKETS.map(() => 0).concat(0);
  waitSum = 0;
  waitCount = 0;
  /** Clients that said hello and have not been assigned since: id -> time of that hello. */
  readonly #joined = new Map<string, number>();

  observe(e: EventRecord): void {
    const f = e.fields;
    switch (e.event) {
      case "join":
        if (f.role === "client" && f.complete === false) this.#joined.set(String(f.peer), e.at);
        else this.#joined.delete(String(f.peer));
        return;
      case "assign":
        for (const id of String(f.clients ?? "").split(",")) {
          const since = this.#joined.get(id);
          if (since === undefined) continue;
          this.#joined.delete(id);
          this.#observeWait(e.at - since);
        }
        return;
      case "leave":
        this.#joined.delete(String(f.peer));
        return;
      case "client-failed":
        return this.#fail(String(f.reason ?? "unknown"));
      case "verify-failed":
        return this.#fail("read-back");
    }
  }

  #fail(reason: string) {
    this.failures.set(reason, (this.failures.get(reason) ?? 0) + 1);
  }

  #observeWait(seconds: number) {
    const s = Math.max(0, seconds);
    this.waitSum += s;
    this.waitCount++;
    ASSIGN_WAIT_BUCKETS.forEach((b, i) => {
      if (s <= b) this.waitBuckets[i]++;
    });
    this.waitBuckets[ASSIGN_WAIT_BUCKETS.length]++;
  }
}

/** A label value, escaped as the text format asks (backslash, quote, newline). */
function label(v: string): string {
  return `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

function num(n: number): string {
  return Number.isFinite(n) ? String(Math.round(n * 1e6) / 1e6) : n > 0 ? "+Inf" : "NaN";
}

/** One image's run as /metrics shows it: its name on the master labels each of its series. */
export interface MetricsRun {
  name: string;
  status: LiveStatus;
  counters: RunCounters;
  /** Hellos refused because the run's peer table was full (MasterCore.fullRefusals). */
  refusedFull?: number;
}

/** Every run's series, each labelled image="NAME" (first), one HELP and TYPE per family. */
export function renderMetrics(runs: readonly MetricsRun[]): string {
  const out: string[] = [];
  const metric = (
    name: string,
    type: string,
    help: string,
    rows: (r: MetricsRun) => [string[], number][],
  ) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const r of runs) {
      for (const [labels, value] of rows(r)) {
        out.push(`${name}{${[`image=${label(r.name)}`, ...labels].join(",")}} ${num(value)}`);
      }
    }
  };
  const one = (value: (s: LiveStatus) => number) => (r: MetricsRun): [string[], number][] => [
    [[], value(r.status)],
  ];
  metric(
    "cascade_peers",
    "gauge",
    "Peers by state and role.",
    ({ status: s }) =>
      (["client", "server", "fake"] as const).flatMap((role) =>
        PEER_STATES.map((state): [string[], number] => [
          [`role=${label(role)}`, `state=${label(state)}`],
          s.peers.filter((p) => p.role === role && p.state === state).length,
        ])
      ),
  );
  metric(
    "cascade_clients_verified",
    "gauge",
    "Clients whose disk passed the read-back check.",
    one((s) => s.peers.filter((p) => p.role === "client" && p.verified).length),
  );
  metric(
    "cascade_clients_expected",
    "gauge",
    "Clients the run waits for (0: ends by hand).",
    one((s) => s.expect ?? 0),
  );
  metric(
    "cascade_bytes_received_total",
    "counter",
    "Bytes the clients received, as they reported them.",
    one((s) => s.totals.bytesReceived),
  );
  metric(
    "cascade_bytes_served_total",
    "counter",
    "Bytes each server served, as its clients reported them.",
    ({ status: s }) =>
      s.peers.filter((p) => p.served > 0 || p.role !== "client").map((p) => [
        [`server=${label(p.id)}`],
        p.served,
      ]),
  );
  metric(
    "cascade_chunk_failures_total",
    "counter",
    "Client failures by reason: fetches that stopped, read-backs that found bad chunks.",
    ({ counters: c }) =>
      [...c.failures].sort(([a], [b]) => a.localeCompare(b)).map(([r, n]) => [
        [`reason=${label(r)}`],
        n,
      ]),
  );
  metric(
    "cascade_hellos_refused_total",
    "counter",
    "Hellos refused by the cap that was full (peers: the run's peer records, maxPeers).",
    (r) => [[['reason="peers"'], r.refusedFull ?? 0]],
  );
  metric(
    "cascade_queue_length",
    "gauge",
    "Peers waiting in each of the master's FIFO queues.",
    ({ status: s }) => [
      [['queue="servers"'], s.queues.servers.length],
      [['queue="clients"'], s.queues.clients.length],
    ],
  );
  out.push(
    "# HELP cascade_assign_wait_seconds Time from a client's hello to its first assignment.",
    "# TYPE cascade_assign_wait_seconds histogram",
  );
  for (const { name, counters: c } of runs) {
    const image = `image=${label(name)}`;
    ASSIGN_WAIT_BUCKETS.forEach((b, i) => {
      out.push(`cascade_assign_wait_seconds_bucket{${image},le="${b}"} ${c.waitBuckets[i]}`);
    });
    out.push(
      `cascade_assign_wait_seconds_bucket{${image},le="+Inf"} ${
        c.waitBuckets[ASSIGN_WAIT_BUCKETS.length]
      }`,
      `cascade_assign_wait_seconds_sum{${image}} ${num(c.waitSum)}`,
      `cascade_assign_wait_seconds_count{${image}} ${c.waitCount}`,
    );
  }
  metric(
    "cascade_paused",
    "gauge",
    "1 while assignments are paused.",
    one((s) => s.paused ? 1 : 0),
  );
  metric(
    "cascade_draining",
    "gauge",
    "1 while no new clients are admitted.",
    one((s) => s.draining ? 1 : 0),
  );
  metric("cascade_run_ended", "gauge", "1 once the run has ended.", one((s) => s.ended ? 1 : 0));
  metric(
    "cascade_run_seconds",
    "gauge",
    "Seconds since the master started.",
    one((s) => s.now - s.startedAt),
  );
  metric(
    "cascade_image_bytes",
    "gauge",
    "Size of the image being deployed (id: its image id).",
    ({ status: s }) => [[[`id=${label(s.imageId)}`], s.image.size]],
  );
  return out.join("\n") + "\n";
}

/** The master's port as /metrics shows it (one process, so no image label). */
export interface PortFigures {
  /** Descriptors its connections hold now, and the most they may (data/slots.ts). */
  held: number;
  cap: number;
  /** Connections closed at once, by the cap that was full ("address" or "total"). */
  refused: { address: number; total: number };
}

export function renderPortMetrics(p: PortFigures): string {
  return [
    "# HELP cascade_port_descriptors Descriptors the master's connections hold.",
    "# TYPE cascade_port_descriptors gauge",
    `cascade_port_descriptors ${p.held}`,
    "# HELP cascade_port_descriptors_cap Descriptors its connections may hold (below its limit).",
    "# TYPE cascade_port_descriptors_cap gauge",
    `cascade_port_descriptors_cap ${p.cap}`,
    "# HELP cascade_connections_refused_total Connections closed at once, by the cap that was full.",
    "# TYPE cascade_connections_refused_total counter",
    `cascade_connections_refused_total{reason="address"} ${p.refused.address}`,
    `cascade_connections_refused_total{reason="total"} ${p.refused.total}`,
  ].join("\n") + "\n";
}
