// bench:lab's "other work on the machine", made reproducible: --load N starts N CPU-busy
// processes (a shell spinning) before a run, Cascade's and udpcast's alike, and ends them by PID
// after it. And where a run's CPU goes: every process's utime + stime from /proc, sampled while
// the run goes on (a PC's client exits at its end: its last sample counts), summed by role.

/** The busy processes of one run; `stop` kills each by its PID and waits for it. */
export interface Load {
  pids: number[];
  stop(): Promise<void>;
}

export function startLoad(n: number): Load {
  const children = Array.from({ length: n }, () =>
    new Deno.Command("sh", {
      args: ["-c", "while :; do :; done"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn());
  return {
    pids: children.map((c) => c.pid),
    async stop() {
      for (const c of children) {
        try {
          c.kill("SIGKILL");
        } catch {
          // gone already
        }
      }
      await Promise.all(children.map((c) => c.status));
    },
  };
}

/** The 1-minute load average now (/proc/loadavg). */
export async function loadAverage(): Promise<number> {
  return Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]);
}

const TICKS = 100; // USER_HZ: /proc's clock ticks per second on Linux

/** The role of a process from its command line, or null for one not of the run. */
export function roleOf(cmdline: string, loadPids: Set<number>, pid: number): string | null {
  if (loadPids.has(pid)) return "load (busy sh)";
  const m = /cascade\.ts (master|fake-server|client|server)\b/.exec(cmdline);
  if (m) return m[1] === "client" ? "cascade clients" : `cascade ${m[1]}`;
  if (/\budp-receiver\b/.test(cmdline)) return "udp-receivers";
  if (/\budp-sender\b/.test(cmdline)) return "udp-sender";
  return null;
}

/** A process's parent and CPU seconds (utime + stime: /proc/PID/stat's fields 4, 14, 15). */
function parseStat(stat: string): { ppid: number; cpu: number } {
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / TICKS };
}

/** Samples every process this one started (its descendants: not other work on the machine)
 * every `everyMs` while running; `stop` gives CPU s by role. */
export function sampleCpu(loadPids: number[], everyMs = 500) {
  const load = new Set(loadPids);
  const last = new Map<number, { role: string; cpu: number }>();
  const roles = new Map<number, string | null>();
  let running = true;
  const sample = async () => {
    const procs = new Map<number, { ppid: number; cpu: number }>();
    for await (const e of Deno.readDir("/proc")) {
      const pid = Number(e.name);
      if (!Number.isInteger(pid)) continue;
      const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => null);
      if (stat) procs.set(pid, parseStat(stat));
    }
    const ours = (pid: number) => {
      for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
        if (p === Deno.pid) return true;
        p = procs.get(p)?.ppid ?? 0;
      }
      return false;
    };
    for (const [pid, { cpu }] of procs) {
      if (pid === Deno.pid || !ours(pid)) continue;
      // Not kept while unknown: a process just forked still shows its parent's command line.
      if (!roles.get(pid)) {
        const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
        roles.set(pid, roleOf(cmd.replaceAll("\0", " "), load, pid));
      }
      const role = roles.get(pid);
      if (role) last.set(pid, { role, cpu });
    }
  };
  const loop = (async () => {
    while (running) {
      await sample();
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop(): Promise<Record<string, number>> {
      running = false;
      await loop;
      await sample();
      const out: Record<string, number> = {};
      for (const { role, cpu } of last.values()) out[role] = (out[role] ?? 0) + cpu;
      return out;
    },
  };
}
