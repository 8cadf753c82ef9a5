// Real Cascade processes for the demo and the end-to-end tests: each role runs as its own
// `deno run cascade.ts <role>` with its output in a log file; all are ended by PID.
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CASCADE = fileURLToPath(new URL("../../cascade.ts", import.meta.url));

export interface LabProcess {
  name: string;
  child: Deno.ChildProcess;
  log: string;
  status: Deno.CommandStatus | null;
}

export class LabProcesses {
  readonly logDir: string;
  readonly procs = new Map<string, LabProcess>();

  /** `cascade`: the cascade.ts to run (default this checkout's; a benchmark compares another). */
  constructor(logDir: string, private readonly cascade = CASCADE) {
    this.logDir = logDir;
    Deno.mkdirSync(logDir, { recursive: true });
  }

  /** Start `cascade <args>` as `name`, output appended to logDir/name.log; `wrap`: a command
   * that runs it (e.g. ["prlimit", "--nofile=256:256"]), which must exec it (same PID). */
  start(
    name: string,
    args: string[],
    env: Record<string, string> = {},
    wrap: string[] = [],
  ): LabProcess {
    const log = join(this.logDir, `${name}.log`);
    const file = Deno.openSync(log, { write: true, create: true, append: true });
    const command = [...wrap, Deno.execPath(), "run", "-A", "--quiet", this.cascade, ...args];
    const child = new Deno.Command(command[0], {
      args: command.slice(1),
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
      env: { NO_COLOR: "1", ...env },
    }).spawn();
    const proc: LabProcess = { name, child, log, status: null };
    // Both streams into one log file; closing it once both are drained.
    Promise.all([
      child.stdout.pipeTo(new WritableStream({ write: (b) => void file.writeSync(b) })),
      child.stderr.pipeTo(new WritableStream({ write: (b) => void file.writeSync(b) })),
    ]).catch(() => {}).finally(() => file.close());
    child.status.then((s) => (proc.status = s));
    this.procs.set(name, proc);
    return proc;
  }

  /** Start the master on port 0 and return its URL once it is listening. */
  async startMaster(
    args: string[],
    timeoutMs = 30_000,
    name = "master",
    wrap: string[] = [],
  ): Promise<string> {
    const proc = this.start(name, ["master", ...args], {}, wrap);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const text = await Deno.readTextFile(proc.log).catch(() => "");
      const m = /master\.listening url=(\S+)/.exec(text);
      if (m) return m[1];
      if (proc.status) {
        throw new Error(
          `The master exited with status ${proc.status.code} before listening:\n${text.trim()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`The master did not start listening within ${timeoutMs / 1000} s`);
  }

  running(name: string): boolean {
    const p = this.procs.get(name);
    return Boolean(p && !p.status);
  }

  /** Wait for every process to exit on its own, up to timeoutMs. */
  async waitAll(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ([...this.procs.values()].every((p) => p.status)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  kill(name: string, signal: Deno.Signal = "SIGKILL") {
    const p = this.procs.get(name);
    if (p && !p.status) {
      try {
        p.child.kill(signal);
      } catch { /* already gone */ }
    }
  }

  /** End everything still running: SIGTERM, then SIGKILL after a grace period. */
  async stopAll(graceMs = 3000) {
    for (const name of this.procs.keys()) this.kill(name, "SIGTERM");
    if (!(await this.waitAll(graceMs))) {
      for (const name of this.procs.keys()) this.kill(name, "SIGKILL");
    }
    await Promise.all([...this.procs.values()].map((p) => p.child.status.catch(() => {})));
  }

  async logText(name: string): Promise<string> {
    const p = this.procs.get(name);
    return p ? await Deno.readTextFile(p.log).catch(() => "") : "";
  }
}
