// bench:client's loopback floor: what sending the image's bytes over loopback TCP costs a process
// that does nothing else (no HTTP, no disk, no hashing). On loopback the kernel often does the
// receiving side's protocol work (softirq) in the sender's context, so a relay's "serve" CPU
// includes work that a real NIC leaves to the other PC; this row is that floor, to read the
// relay's own serving cost against (relay - receiver - floor). The sender and a plain reader
// each run in a process of their own; the sender's CPU is from /proc (all its threads).
//
//   deno run -A scripts/bench_floor.ts --send SIZE | --read PORT   (children; see floorRun)
import { parseArgs } from "node:util";
import { jsonLines } from "./child_lines.ts";

const CLK_TCK = 100;

async function cpuSelf(): Promise<number> {
  const stat = await Deno.readTextFile("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Child: accept one connection, write `size` bytes in 1 MiB writes, print its CPU seconds. */
async function sendChild(size: number): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(JSON.stringify({ port: (listener.addr as Deno.NetAddr).port }));
  const conn = await listener.accept();
  const buf = crypto.getRandomValues(new Uint8Array(64 << 10));
  const chunk = new Uint8Array(1 << 20);
  for (let at = 0; at < chunk.length; at += buf.length) chunk.set(buf, at);
  const c0 = await cpuSelf();
  const t0 = performance.now();
  for (let left = size; left > 0;) {
    left -= await conn.write(chunk.subarray(0, Math.min(left, chunk.length)));
  }
  conn.close();
  const cpu = (await cpuSelf()) - c0;
  console.log(JSON.stringify({ cpu, seconds: (performance.now() - t0) / 1000 }));
  listener.close();
}

/** Child: read the connection to its end into one buffer. */
async function readChild(port: number): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const buf = new Uint8Array(1 << 20);
  while ((await conn.read(buf)) !== null);
  conn.close();
}

export interface FloorSample {
  cpu: number;
  seconds: number;
}

/** One floor run: the sender's CPU seconds and wall seconds for `size` bytes. */
export async function floorRun(size: number): Promise<FloorSample> {
  const script = new URL(import.meta.url).pathname;
  const sender = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, "--send", String(size)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = sender.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const line = jsonLines(out, "The floor's sender");
  try {
    const { port } = await line("its port");
    const reader = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, "--read", String(port)],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const { cpu, seconds } = await line("its CPU time");
    if (!(await reader.status).success) throw new Error("The floor's reader failed");
    return { cpu: Number(cpu), seconds: Number(seconds) };
  } finally {
    out.releaseLock();
    await sender.stdout.cancel().catch(() => {});
    await sender.status;
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { send: { type: "string" }, read: { type: "string" } } });
  if (values.send) await sendChild(Number(values.send));
  else if (values.read) await readChild(Number(values.read));
}
