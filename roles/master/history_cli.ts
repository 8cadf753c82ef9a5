// `cascade history`: print the master's run history (runs, each PC's result, its failures).
import { type CommandSpec, parseCommand, UsageError } from "../../imagetools/kit/mod.ts";
import { formatBytes, formatDuration, parseCount } from "../../imagetools/kit/mod.ts";
import {
  HISTORY_FILE,
  type HistoryAdminAction,
  type HistoryPc,
  type HistoryRun,
  openHistory,
} from "./history.ts";

export const historySpec: CommandSpec = {
  name: "history",
  summary: "print the master's run history: runs, each PC's result and failures",
  usage: "[--db FILE] [--run ID] [--admin] [--json]",
  options: {
    db: {
      type: "string",
      arg: "FILE",
      help: "History database (the master writes it beside the slices folder)",
      default: HISTORY_FILE,
      env: "CASCADE_HISTORY",
    },
    run: { type: "string", arg: "ID", help: "Show this run (default: the latest)" },
    runs: { type: "string", arg: "N", help: "How many runs to list", default: "20" },
    admin: { type: "boolean", help: "List the latest admin actions: when, who, sign-in, what" },
    json: { type: "boolean", help: "Print JSON instead of tables" },
  },
  notes: [
    "Lists the latest runs, then every PC of one run: verified by read-back or not, time, bytes,",
    "who served it, and each failure with its reason. Times are local.",
  ],
};

/** "2026-11-26 17:41:04" in local time. */
export function localTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${
    p(d.getMinutes())
  }:${p(d.getSeconds())}`;
}

function table(head: string[], rows: string[][]): string[] {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd();
  return [line(head), line(w.map((n) => "-".repeat(n))), ...rows.map(line)];
}

function span(start: number, end: number | null): string {
  return end === null ? "-" : formatDuration((end - start) / 1000);
}

export function renderRuns(runs: HistoryRun[], time = localTime): string {
  if (runs.length === 0) return "No runs recorded yet.";
  return table(
    ["run", "started", "time", "image", "mode", "verified", "end"],
    runs.map((r) => [
      String(r.id),
      time(r.startedAt),
      span(r.startedAt, r.endedAt),
      `${r.imageName} (${r.imageId.slice(0, 12)})`,
      r.mode,
      `${r.verified}/${r.pcs}`,
      r.endReason ?? "(no end recorded: the master stopped mid-run)",
    ]),
  ).join("\n");
}

export function renderAdminActions(actions: HistoryAdminAction[], time = localTime): string {
  if (actions.length === 0) return "No admin actions recorded yet.";
  return table(
    ["when", "action", "image", "by", "sign-in", "detail"],
    actions.map((a) => [time(a.at), a.action, a.image ?? "-", a.by, a.session, a.detail]),
  ).join("\n");
}

export function renderRun(run: HistoryRun, pcs: HistoryPc[], time = localTime): string {
  const head =
    `Run ${run.id}: "${run.imageName}" (${run.imageId.slice(0, 12)}), ${run.mode} mode, ` +
    `started ${time(run.startedAt)}, ${run.verified} of ${run.pcs} PCs verified; ` +
    (run.endReason
      ? `ended after ${span(run.startedAt, run.endedAt)}: ${run.endReason}`
      : "no end recorded");
  const rows = pcs.map((p) => [
    p.peer,
    p.address,
    p.mac ?? "-",
    time(p.startedAt).slice(11),
    span(p.startedAt, p.endedAt),
    formatBytes(p.bytes),
    p.verified ? "yes" : `NO (${p.state})`,
    p.servedBy.join(" > ") || "-",
    String(p.failures.length),
  ]);
  const failures = pcs.flatMap((p) =>
    p.failures.map((f) =>
      `  ${time(f.at).slice(11)}  ${p.peer}: ${f.reason}${
        f.server ? ` (server ${f.server})` : ""
      }: ${f.detail}`
    )
  );
  const disks = pcs.filter((p) => p.disk || p.finish || p.boots.length).map((p) =>
    `  ${p.peer}: ${p.disk ?? "-"}${p.diskReason ? ` (${p.diskReason})` : ""}; finishing: ${
      p.finish ? `${p.finish.ok ? "ok" : "FAILED"}: ${p.finish.detail}` : "-"
    }; boot answers: ${p.boots.map((b) => b.answer).join(", ") || "-"}`
  );
  return [
    head,
    "",
    ...(rows.length
      ? table(
        ["PC", "address", "MAC", "started", "time", "bytes", "verified", "served by", "failures"],
        rows,
      )
      : ["No PCs joined this run."]),
    ...(failures.length ? ["", "Failures:", ...failures] : []),
    ...(disks.length ? ["", "Disks and finishing:", ...disks] : []),
  ].join("\n");
}

export async function historyMain(args: string[]): Promise<number> {
  const p = parseCommand(historySpec, args);
  if (!p) return 0;
  const v = p.values as Record<string, string | boolean | undefined>;
  const db = v.db as string;
  if (!(await Deno.stat(db).catch(() => null))) {
    throw new Error(
      `No run history at "${db}": the master writes it beside the slices folder ` +
        `(or where --history says); pass --db FILE`,
    );
  }
  const runId = v.run !== undefined ? parseCount(v.run as string, "--run", 1) : undefined;
  const history = openHistory(db, { readOnly: true });
  try {
    if (v.admin) {
      const actions = history.adminActions(parseCount(v.runs as string, "--runs", 1, 100000));
      console.log(v.json ? JSON.stringify({ actions }, null, 2) : renderAdminActions(actions));
      return 0;
    }
    const runs = history.runs(parseCount(v.runs as string, "--runs", 1, 100000));
    const run = runId !== undefined ? history.run(runId) : runs[0];
    if (runId !== undefined && !run) throw new UsageError(`No run ${runId} in "${db}"`);
    const pcs = run ? history.pcs(run.id) : [];
    if (v.json) {
      console.log(JSON.stringify(runId !== undefined ? { run, pcs } : { runs, run, pcs }, null, 2));
    } else if (runId !== undefined) {
      console.log(renderRun(run!, pcs));
    } else {
      console.log(renderRuns(runs) + (run ? `\n\n${renderRun(run, pcs)}` : ""));
    }
  } finally {
    history.close();
  }
  return 0;
}
