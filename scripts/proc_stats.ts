// A process's CPU and memory from Linux's /proc, for the benchmarks: CPU seconds (user and
// system), per thread (the master's one JS thread against its workers and Deno's own), RSS.
// A share of a core over a window is what the goals are stated in.

const TICKS = 100; // /proc clock ticks per second on Linux

/** User and system CPU seconds of a /proc stat line (a process's or a thread's). */
function statCpu(path: string): { user: number; sys: number } {
  const stat = Deno.readTextFileSync(path);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(f[11]) / TICKS, sys: Number(f[12]) / TICKS };
}

export function procCpu(pid: number): { user: number; sys: number } {
  return statCpu(`/proc/${pid}/stat`);
}

/** CPU seconds of the process's main thread (its JS event loop) and of all its other threads. */
export function threadCpu(pid: number): { main: number; others: number } {
  let others = 0;
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    if (t.name === String(pid)) continue;
    try {
      const c = statCpu(`/proc/${pid}/task/${t.name}/stat`);
      others += c.user + c.sys;
    } catch { /* the thread ended */ }
  }
  const m = statCpu(`/proc/${pid}/task/${pid}/stat`);
  return { main: m.user + m.sys, others };
}

export function procRssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) / 1024 : NaN;
}

export interface Sample {
  /** Share of one core: all, and the part in the kernel (system time). */
  cpu: number;
  sys: number;
  /** The part on its main thread (the JS event loop). */
  main: number;
  /** Median RSS over the window, MB. */
  rss: number;
}

/** CPU share of one core and RSS over a window of `ms`. */
export async function sample(pid: number, ms: number): Promise<Sample> {
  const c0 = procCpu(pid), m0 = threadCpu(pid).main, t0 = performance.now();
  const rss: number[] = [];
  while (performance.now() - t0 < ms) {
    await new Promise((r) => setTimeout(r, 500));
    rss.push(procRssMb(pid));
  }
  const c1 = procCpu(pid), m1 = threadCpu(pid).main, secs = (performance.now() - t0) / 1000;
  rss.sort((a, b) => a - b);
  return {
    cpu: (c1.user + c1.sys - c0.user - c0.sys) / secs,
    sys: (c1.sys - c0.sys) / secs,
    main: (m1 - m0) / secs,
    rss: rss[Math.floor(rss.length / 2)],
  };
}
