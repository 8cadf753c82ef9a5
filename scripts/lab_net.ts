// TypeScript side of scripts/lab_net.sh: bring an emulated switched LAN up, run commands inside
// its hosts (every PID recorded by the script, so `down` ends exactly those), take it down.
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("./lab_net.sh", import.meta.url));

export interface LabNetOptions {
  /** Hosts (network namespaces) on the switch, numbered 1..hosts. */
  hosts: number;
  /** tc rate of every port in each direction, e.g. "100mbit". */
  rate: string;
  /** Name prefix of this lab's namespaces (default: unique to this process). */
  prefix?: string;
  /** First three octets of the hosts' /24 (default 10.213.0): host i is SUBNET.i. */
  subnet?: string;
  /** Hosts whose port runs at another rate: host number -> tc rate. */
  ports?: Record<number, string>;
  /** Host number -> its switch (1..; default 1). Switches are joined in a row by uplinks. */
  switchOf?: Record<number, number>;
  /** tc rate of each uplink between two switches (default: `rate`). */
  uplink?: string;
}

export interface HostProcess {
  host: number;
  child: Deno.ChildProcess;
  /** Exit status once it has exited. */
  status: Deno.CommandStatus | null;
  /** Resolves when the process has exited and its output is in the log. */
  done: Promise<Deno.CommandStatus>;
}

let counter = 0;

/** A prefix no other run shares: the PID of this process, a counter, and 4 random hex digits
 * (PIDs wrap at 32768: a lab a killed run left under a reused PID refused a new one). */
export function uniquePrefix(): string {
  const salt = crypto.getRandomValues(new Uint16Array(1))[0].toString(16).padStart(4, "0");
  return `cas${Deno.pid}x${counter++}${salt}-`;
}

async function runScript(args: string[]): Promise<string> {
  const out = await new Deno.Command("bash", { args: [SCRIPT, ...args], stdin: "null" }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(`Cannot run "lab_net.sh ${args.join(" ")}" (exit ${out.code}): ${text.trim()}`);
  }
  return text;
}

export class LabNet {
  readonly prefix: string;
  readonly hosts: number;
  readonly rate: string;
  readonly subnet: string;
  readonly ports: Readonly<Record<number, string>>;
  readonly switchOf: Readonly<Record<number, number>>;
  readonly uplink: string;
  #procs = new Set<HostProcess>();
  #down = false;

  private constructor(o: Required<LabNetOptions>) {
    this.prefix = o.prefix;
    this.hosts = o.hosts;
    this.rate = o.rate;
    this.subnet = o.subnet;
    this.ports = o.ports;
    this.switchOf = o.switchOf;
    this.uplink = o.uplink;
  }

  /** Build the lab (root only). Take it down with down(), also after a failure. */
  static async up(o: LabNetOptions): Promise<LabNet> {
    const lab = new LabNet({
      hosts: o.hosts,
      rate: o.rate,
      prefix: o.prefix ?? uniquePrefix(),
      subnet: o.subnet ?? "10.213.0",
      ports: o.ports ?? {},
      switchOf: o.switchOf ?? {},
      uplink: o.uplink ?? o.rate,
    });
    const args = ["up", String(lab.hosts), lab.rate, lab.prefix, lab.subnet];
    for (const [h, r] of Object.entries(lab.ports)) args.push("--port", `${h}=${r}`);
    for (const [h, k] of Object.entries(lab.switchOf)) args.push("--switch", `${h}=${k}`);
    if (Object.keys(lab.switchOf).length) args.push("--uplink", lab.uplink);
    await runScript(args);
    return lab;
  }

  /** The switch host i is on (1 unless switchOf says otherwise). */
  switchNumber(host: number): number {
    this.#check(host);
    return this.switchOf[host] ?? 1;
  }

  /** The lab as a master's topology file: each host's address and its switch's name. */
  topology(): string {
    const lines = ["# written by scripts/lab_net.ts: one line per host"];
    for (let h = 1; h <= this.hosts; h++) lines.push(`sw${this.switchNumber(h)} ${this.ip(h)}`);
    return lines.join("\n") + "\n";
  }

  /** Stop every process of host i for `seconds` (kill -STOP, then -CONT); resolves after. */
  async stall(host: number, seconds: number): Promise<void> {
    this.#check(host);
    await runScript(["stall", this.prefix, String(host), String(seconds)]);
  }

  /** Address of host i. */
  ip(host: number): string {
    this.#check(host);
    return `${this.subnet}.${host}`;
  }

  /** Network namespace of host i. */
  ns(host: number): string {
    this.#check(host);
    return `${this.prefix}h${host}`;
  }

  #check(host: number) {
    if (!Number.isInteger(host) || host < 1 || host > this.hosts) {
      throw new RangeError(`Invalid host ${host}: this lab has hosts 1..${this.hosts}`);
    }
  }

  /** Start `cmd` inside host i, stdout and stderr appended to `log` (or discarded). */
  spawn(host: number, cmd: string[], o: { log?: string; env?: Record<string, string> } = {}) {
    this.#check(host);
    if (this.#down) throw new Error(`Cannot start "${cmd[0]}": lab ${this.prefix} is down`);
    const child = new Deno.Command("bash", {
      args: [SCRIPT, "exec", this.prefix, String(host), ...cmd],
      stdin: "null",
      stdout: o.log ? "piped" : "null",
      stderr: o.log ? "piped" : "null",
      env: { NO_COLOR: "1", ...o.env },
    }).spawn();
    let drained: Promise<unknown> = Promise.resolve();
    if (o.log) {
      const file = Deno.openSync(o.log, { write: true, create: true, append: true });
      // Both streams into one log file, closed once both are drained.
      drained = Promise.all([
        child.stdout.pipeTo(new WritableStream({ write: (b) => void file.writeSync(b) })),
        child.stderr.pipeTo(new WritableStream({ write: (b) => void file.writeSync(b) })),
      ]).catch(() => {}).finally(() => file.close());
    }
    const proc: HostProcess = {
      host,
      child,
      status: null,
      done: child.status.then(async (s) => {
        await drained;
        proc.status = s;
        this.#procs.delete(proc);
        return s;
      }),
    };
    this.#procs.add(proc);
    return proc;
  }

  /** Run a short command inside host i and return its output (throws on a non-zero exit). */
  async run(host: number, cmd: string[]): Promise<string> {
    this.#check(host);
    const out = await new Deno.Command("bash", {
      args: [SCRIPT, "exec", this.prefix, String(host), ...cmd],
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) {
      throw new Error(
        `Cannot run "${cmd.join(" ")}" in ${this.ns(host)} (exit ${out.code}): ${
          new TextDecoder().decode(out.stderr).trim()
        }`,
      );
    }
    return text;
  }

  /** Processes started with spawn() that are still running. */
  running(): HostProcess[] {
    return [...this.#procs];
  }

  /** End every recorded process, delete the namespaces and the state. Safe to call twice. */
  async down(): Promise<void> {
    if (this.#down) return;
    this.#down = true;
    try {
      await runScript(["down", this.prefix]);
    } finally {
      // The script has ended them; collect their statuses so no handle is left open.
      await Promise.all([...this.#procs].map((p) => p.done.catch(() => {})));
    }
  }
}

/** Namespaces and live recorded PIDs of a prefix (empty when the lab is gone). */
export async function labLeftovers(prefix: string): Promise<string[]> {
  const text = await runScript(["list", prefix]);
  return text.split("\n").filter((l) => l.trim() !== "");
}
