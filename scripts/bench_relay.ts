// bench:client's relay row: what one relay costs. A relay receives (fetch, verify, write) from
// the chunk server and, at the same time, serves each verified chunk on to one downstream client
// through a ticket-checked chunk server, as a Cascade client in relay mode does. The relay runs
// in its own process, so its CPU seconds (all threads, from /proc) are its own; the downstream
// is bench:client's receiver child, fetching from the relay.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type * as DataRoom from "../roles/data/mod.ts";
import { issueTicket, ticketValid } from "../roles/protocol/mod.ts";
import { jsonLines } from "./child_lines.ts";

/** Child mode: receive from `url` onto `target` and serve it on; print the URL, then stats. */
export async function relayChild(args: {
  url: string;
  manifest: string;
  target: string;
  inflight: number;
  md5Threads: number;
  ticketKey: string;
  code: string;
}): Promise<void> {
  const room: typeof DataRoom = await import(
    pathToFileURL(join(args.code, "roles/data/mod.ts")).href
  );
  const manifestBytes = await Deno.readFile(args.manifest);
  const { name, size } = JSON.parse(new TextDecoder().decode(manifestBytes));
  const target = await room.openTarget(args.target, size, name);
  const receiver = new room.Receiver({
    manifestBytes,
    target,
    inflight: args.inflight,
    md5Threads: args.md5Threads,
  });
  const server = await room.startChunkServer({
    source: receiver,
    hostname: "127.0.0.1",
    port: 0,
    tickets: (ticket, address) => ticketValid(args.ticketKey, ticket, address),
  });
  console.log(JSON.stringify({ url: server.url }));
  const t0 = performance.now();
  await receiver.fetchFrom(args.url);
  console.log(JSON.stringify({ received: (performance.now() - t0) / 1000 }));
  // Serve until the parent has read this process's CPU time and stops it.
  await new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", () => resolve()));
  // Where the held chunks it served came from (checkouts before held_read.ts have no counts).
  const held = (receiver as { heldReadStats?: () => unknown }).heldReadStats?.();
  if (held) console.error(`relay held reads ${JSON.stringify(held)}`);
  await server.close();
  target.close();
}

export interface RelaySample {
  /** Seconds until the downstream client held and verified every chunk. */
  seconds: number;
  /** The relay process's CPU seconds over the run (receiving and serving). */
  cpu: number;
  serverCpu: number;
  /** The relay's own fetch, seconds. */
  received: number;
}

/**
 * One relay run: start the relay child, then the downstream receiver (`downstream(url, ticket)`,
 * which returns the downstream's seconds); the relay's CPU is read once both are done.
 */
export async function relayRun(o: {
  script: string;
  url: string;
  manifest: string;
  target: string;
  serverPid: number;
  inflight: number;
  md5Threads: number;
  code: string;
  cpuSeconds: (pid: number) => Promise<number>;
  downstream: (url: string, ticket: string) => Promise<number>;
}): Promise<RelaySample> {
  const ticketKey = randomBytes(32).toString("hex");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      // CASCADE_RELAY_PROFILE=DIR: the relay's V8 CPU profile (scripts/profile_top.ts names it).
      ...(Deno.env.get("CASCADE_RELAY_PROFILE")
        ? ["--cpu-prof", `--cpu-prof-dir=${Deno.env.get("CASCADE_RELAY_PROFILE")}`]
        : []),
      o.script,
      "--relay",
      o.url,
      "--manifest",
      o.manifest,
      "--target",
      o.target,
      "--inflight",
      String(o.inflight),
      "--md5-threads",
      String(o.md5Threads),
      "--ticket-key",
      ticketKey,
      "--code",
      o.code,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const nextLine = jsonLines(lines, "The relay");
  try {
    const { url } = await nextLine("its URL");
    const c0 = await o.cpuSeconds(child.pid);
    const s0 = await o.cpuSeconds(o.serverPid);
    const ticket = issueTicket(ticketKey, randomBytes(8).toString("hex"), "127.0.0.1");
    const seconds = await o.downstream(String(url), ticket);
    const { received } = await nextLine("that it received everything");
    const cpu = (await o.cpuSeconds(child.pid)) - c0;
    const serverCpu = (await o.cpuSeconds(o.serverPid)) - s0;
    return { seconds, cpu, serverCpu, received: Number(received) };
  } finally {
    child.kill("SIGTERM");
    lines.releaseLock();
    await child.stdout.cancel().catch(() => {});
    await child.status;
  }
}
