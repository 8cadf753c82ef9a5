// The master at site scale: N emulated PCs (scripts/emulate_pcs.ts, control sessions only)
// against a real master process on loopback, then V dashboard viewers, then the burst of every
// PC finishing. Prints one table: time to all assigned, the master's CPU and RSS with and without
// viewers, each viewer's bytes/s, the largest request latency through the burst, sessions
// dropped, protocol errors, PCs verified, and the page's first paint in Chromium.
//
//   deno run -A scripts/bench_dashboard.ts --pcs 1500 --viewers 20
//   deno run -A scripts/bench_dashboard.ts --repo /tmp/old --viewer-path '/api/v1/events?view=dashboard'
//
// --repo runs the master of another checkout (a baseline, measured in the same way).
import { parseArgs } from "node:util";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import {
  type Manifest,
  MANIFEST_FORMAT,
  serializeManifest,
  storedFileName,
} from "../imagetools/mod.ts";
import { emulatePcs } from "./emulate_pcs.ts";
import { startProbe } from "./latency_probe.ts";
import { sample, threadCpu } from "./proc_stats.ts";

const HELP = `The master at site scale: emulated PCs, dashboard viewers, the finishing burst.

USAGE
  deno run -A scripts/bench_dashboard.ts [OPTIONS]

OPTIONS
  --pcs N            emulated PCs (default 1500)
  --viewers N        dashboard viewers (default 20)
  --chunks N         chunks of 1 MiB in the image (default 400)
  --rate N           chunks/s each PC receives at (default 5)
  --repo DIR         run the master from this checkout (default: this one)
  --viewer-path P    what a viewer follows (default /api/v1/feed/events)
  --no-browser       skip the first paint in Chromium
  --log FILE         keep the master's log there (its stderr: every assign, demotion, proof)
  --profile DIR      write the master's V8 CPU profile into DIR (deno --cpu-prof; open it in
                     Chrome DevTools, or summarise it with scripts/profile_top.ts)
  --help             this text
`;

const started = performance.now();
const phase = (what: string) =>
  console.error(`bench ${((performance.now() - started) / 1000).toFixed(0)}s ${what}`);

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** One viewer: follow the event stream, count its bytes. */
function viewer(url: string) {
  const ctl = new AbortController();
  const v = { bytes: 0, events: 0, ctl };
  (async () => {
    try {
      const res = await fetch(url, { signal: ctl.signal });
      const reader = res.body!.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        v.bytes += value.byteLength;
        v.events += dec.decode(value).split("\nevent: ").length - 1 +
          (dec.decode(value.subarray(0, 7)) === "event: " ? 1 : 0);
      }
    } catch { /* aborted */ }
  })();
  return v;
}

interface Paint {
  /** The page's first byte and last byte from the master, first contentful paint, all drawn. */
  ttfb: number;
  html: number;
  fcp: number;
  ready: number;
}

/** The page loaded `times` times, each in a fresh page of one browser: one load says little of a
 * shared machine (a first paint of 1,700 ms once in three runs). */
async function firstPaint(url: string, tiles: number, times: number): Promise<Paint[]> {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu"],
  });
  type G = {
    document: { querySelectorAll(s: string): { length: number } };
    performance: {
      now(): number;
      getEntriesByName(n: string): { startTime: number }[];
      getEntriesByType(t: string): { responseStart: number; responseEnd: number }[];
    };
  };
  const out: Paint[] = [];
  try {
    for (let i = 0; i < times; i++) {
      const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
      out.push(await loadOnce(page, url, tiles));
      await page.close();
    }
    return out;
  } finally {
    await browser.close();
  }

  async function loadOnce(
    page: Awaited<ReturnType<typeof browser.newPage>>,
    url: string,
    tiles: number,
  ): Promise<Paint> {
    await page.goto(url);
    // "ready": every PC drawn (the new page's tiles; the old page's table rows).
    await page.waitForFunction(
      (n) => {
        const g = globalThis as unknown as G;
        return g.document.querySelectorAll("#room .t, tr[data-peer]").length >= n;
      },
      tiles,
      { timeout: 30_000 },
    );
    const ready = await page.evaluate(() => (globalThis as unknown as G).performance.now());
    const fcp = await page.evaluate(() =>
      (globalThis as unknown as G).performance.getEntriesByName("first-contentful-paint")[0]
        ?.startTime ?? NaN
    );
    const nav = await page.evaluate(() => {
      const n = (globalThis as unknown as G).performance.getEntriesByType("navigation")[0];
      return { ttfb: n?.responseStart ?? NaN, html: n?.responseEnd ?? NaN };
    });
    return { ...nav, fcp, ready };
  }
}

async function main() {
  const { values: v } = parseArgs({
    options: {
      pcs: { type: "string", default: "1500" },
      viewers: { type: "string", default: "20" },
      chunks: { type: "string", default: "400" },
      rate: { type: "string", default: "5" },
      repo: { type: "string" },
      "viewer-path": { type: "string", default: "/api/v1/feed/events" },
      "no-browser": { type: "boolean", default: false },
      profile: { type: "string" },
      log: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (v.help) return console.log(HELP);
  const num = (name: string, s: string) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`Invalid "--${name}" ${JSON.stringify(s)}: expected a whole number ≥ 1`);
    }
    return n;
  };
  const pcs = num("pcs", v.pcs!), viewers = num("viewers", v.viewers!);
  const chunks = num("chunks", v.chunks!), rate = num("rate", v.rate!);
  const repo = v.repo ?? new URL("..", import.meta.url).pathname;
  // The machine's load, said with the figures (a shared machine's figures mean little without).
  const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  const loadAtStart = load();

  const dir = await Deno.makeTempDir({ prefix: "cascade-bench-dash-" });
  const slices = join(dir, "slices");
  await Deno.mkdir(slices);
  const hex = (n: number) => randomBytes(n).toString("hex");
  const CHUNK = 1024 * 1024;
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    name: "bench.img",
    size: chunks * CHUNK,
    chunkSize: CHUNK,
    md5: hex(16),
    sha256: hex(32),
    chunks: Array.from({ length: chunks }, () => ({ md5: hex(16), sha256: hex(32), zero: false })),
  };
  await Deno.writeTextFile(join(slices, "manifest.json"), serializeManifest(manifest));
  // The master checks every chunk file at start and proves PCs against them: sparse files of
  // the right size (nothing is transferred; a PC's proof reads the same files as the master).
  await Deno.mkdir(join(slices, "chunks"));
  for (const entry of manifest.chunks) {
    const path = join(slices, "chunks", storedFileName(entry));
    await Deno.writeFile(path, new Uint8Array());
    await Deno.truncate(path, CHUNK);
  }
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const log = await Deno.open(join(dir, "master.log"), { write: true, create: true });
  const errLog = await Deno.open(join(dir, "master.err"), { write: true, create: true });
  const master = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(v.profile ? ["--cpu-prof", `--cpu-prof-dir=${v.profile}`] : []),
      join(repo, "cascade.ts"),
      "master",
      "--slices",
      slices,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--mode",
      "relay",
      "--linger",
      "1",
      "--no-history",
      "--token",
      "bench",
    ],
    // Every emulated PC is on 127.0.0.1: lift the per-address cap (an env var, so an older
    // checkout's master given as the baseline still starts).
    env: { CASCADE_MAX_PER_ADDRESS: "1000000" },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const logged = Promise.all([
    master.stdout.pipeTo(log.writable),
    master.stderr.pipeTo(errLog.writable),
  ]);
  let exited: string | null = null;
  master.status.then(async (st) => {
    const tail = (await Deno.readTextFile(join(dir, "master.err")).catch(() => ""))
      .split("\n").filter((l) => !/^pc-|^-+ |^PC /.test(l)).slice(-4).join(" | ");
    exited = `The master exited (code ${st.code}): ${tail.slice(0, 400)}`;
  });
  const alive = () => {
    if (exited) throw new Error(exited);
  };
  const out: [string, string][] = [];
  let em: Awaited<ReturnType<typeof emulatePcs>> | undefined;
  try {
    for (let i = 0;; i++) {
      try {
        await (await fetch(`${url}/api/v1/image`)).arrayBuffer();
        break;
      } catch {
        if (i > 100) throw new Error(`The master on ${url} did not come up; see ${dir}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const pct = (share: number) => `${(share * 100).toFixed(1)} %`;
    const idle = await sample(master.pid, 2000);
    out.push([
      "master idle: CPU, RSS",
      `${(idle.cpu * 100).toFixed(1)} %, ${idle.rss.toFixed(0)} MB`,
    ]);

    // Join: every PC says hello and is assigned.
    phase(`join: ${pcs} PCs`);
    const latency = startProbe(`${url}/api/v1/image`, 100);
    const t0 = performance.now();
    // A baseline master (--repo) may be older than the trust split: it wants the token in hellos.
    em = await emulatePcs({
      master: url,
      pcs,
      rate,
      fake: true,
      slices,
      ...(v.repo ? { helloToken: "bench" } : {}),
    });
    let shown = performance.now();
    while (em!.stats.assignedPcs < pcs) {
      alive();
      if (performance.now() - shown > 5000) {
        shown = performance.now();
        const st = em!.stats;
        phase(
          `join: ${st.opened} sessions open, ${st.welcomed} welcomed, ${st.assignedPcs} assigned`,
        );
      }
      if (performance.now() - t0 > 120_000) {
        throw new Error(`Only ${em!.stats.assignedPcs} assigned`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const assignedIn = (performance.now() - t0) / 1000;
    out.push([`time to all ${pcs} assigned`, `${assignedIn.toFixed(1)} s`]);
    await new Promise((r) => setTimeout(r, 2000));
    const steady = await sample(master.pid, 10_000);
    out.push([
      "master steady, no viewers: CPU (system; JS thread), RSS",
      `${pct(steady.cpu)} (${pct(steady.sys)}; ${pct(steady.main)}), ${steady.rss.toFixed(0)} MB`,
    ]);

    phase(`${viewers} viewers`);
    const vs = Array.from({ length: viewers }, () => viewer(`${url}${v["viewer-path"]}`));
    await new Promise((r) => setTimeout(r, 3000)); // past the first snapshot
    const b0 = vs.map((x) => x.bytes);
    const tv = performance.now();
    const watched = await sample(master.pid, 10_000);
    const secs = (performance.now() - tv) / 1000;
    const rates = vs.map((x, i) => (x.bytes - b0[i]) / secs / 1000).sort((a, b) => a - b);
    out.push([
      `master with ${viewers} viewers: CPU (system; JS thread), RSS`,
      `${pct(watched.cpu)} (${pct(watched.sys)}; ${pct(watched.main)}), ${
        watched.rss.toFixed(0)
      } MB`,
    ]);
    out.push([
      "per viewer: median (max) KB/s",
      `${rates[Math.floor(rates.length / 2)].toFixed(1)} (${rates.at(-1)!.toFixed(1)})`,
    ]);
    if (!v["no-browser"]) {
      phase("first paint in chromium");
      const p = await firstPaint(url, pcs, 3).catch((err) => (err as Error).message.split("\n")[0]);
      const ms = (key: keyof Paint) =>
        typeof p === "string" ? "" : p.map((x) => x[key].toFixed(0)).join(" / ");
      out.push([
        "Chromium, 3 loads: first contentful paint (ms)",
        typeof p === "string" ? `failed: ${p}` : ms("fcp"),
      ]);
      if (typeof p !== "string") {
        out.push([
          "  the page's first byte, last byte; all PCs drawn",
          `${ms("ttfb")}; ${ms("html")}; ${ms("ready")}`,
        ]);
      }
    }

    // The burst: every PC finishes (a relay chain moves as one), viewers still watching.
    phase("burst: every PC finishing");
    latency.reset();
    const tb = performance.now();
    // The burst proper: from the first PC holding every chunk to the last one verified.
    let burst0 = threadCpu(master.pid), tf = tb;
    // This thread runs the emulated PCs: how late its timers ran says whether their reports
    // went out on time (a PC whose report is late over a second looks stalled to the master).
    let lag = 0, lagAt = performance.now();
    const lagTimer = setInterval(() => {
      lag = Math.max(lag, performance.now() - lagAt - 50);
      lagAt = performance.now();
    }, 50);
    while (em.stats.verified < pcs) {
      alive();
      if (em.stats.received === 0) burst0 = threadCpu(master.pid), tf = performance.now();
      if (performance.now() - tb > 600_000) throw new Error(`Only ${em.stats.verified} verified`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const burst1 = threadCpu(master.pid), burstSecs = (performance.now() - tf) / 1000;
    clearInterval(lagTimer);
    out.push([
      "burst: the emulated PCs' thread, its timers late by at most",
      `${lag.toFixed(0)} ms`,
    ]);
    out.push([
      "burst: seconds, master's JS thread CPU, its other threads",
      `${burstSecs.toFixed(1)} s, ${pct((burst1.main - burst0.main) / burstSecs)}, ${
        pct((burst1.others - burst0.others) / burstSecs)
      }`,
    ]);
    // The PCs have all said "verified"; the master counts them once it has read their messages.
    const tc = performance.now();
    let status: { totals: { verified: number } } = { totals: { verified: 0 } };
    let statusMs = 0;
    while (performance.now() - tc < 60_000) {
      alive();
      const t = performance.now();
      status = await (await fetch(`${url}/api/v1/status`)).json();
      statusMs = performance.now() - t;
      if (status.totals.verified >= pcs) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    out.push([
      "master counted the last verified after",
      `${((performance.now() - tc) / 1000).toFixed(1)} s`,
    ]);
    const lat = await latency.end();
    out.push(["burst: sessions dropped", String(em.stats.dropped)]);
    out.push(["burst: protocol errors", String(em.stats.errors.length)]);
    out.push(["verified (status totals)", `${status.totals.verified} of ${pcs}`]);
    out.push([
      "GET /api/v1/image through the burst: max, p99 (median)",
      `${lat.max.toFixed(0)} ms, ${lat.p99.toFixed(0)} ms (${
        lat.median.toFixed(1)
      } ms), ${lat.n} requests`,
    ]);
    out.push(["GET /api/v1/status at the end", `${statusMs.toFixed(0)} ms`]);
    for (const x of vs) x.ctl.abort();
    await fetch(`${url}/api/v1/admin/end`, {
      method: "POST",
      headers: { authorization: "Bearer bench" },
    }).then((r) => r.arrayBuffer());
    // Every PC hears "end" (bounded: a master that fell far behind may never say it to all).
    await Promise.race([em.done, new Promise((r) => setTimeout(r, 20_000))]);
    em.close();
    if (em.stats.errors.length) console.error(em.stats.errors.slice(0, 5).join("\n"));
  } catch (err) {
    // What was measured stays in the table; the reason the run stopped goes last.
    out.push(["run stopped early", (err as Error).message]);
  } finally {
    // A run stopped early leaves sessions and timers that would keep this process alive.
    em?.close();
    phase("stopping the master");
    try {
      master.kill("SIGTERM");
    } catch { /* gone */ }
    await master.status;
    await logged.catch(() => {});
    // What the scheduler did to the chain, from the master's log: a demotion in the join or the
    // burst re-attaches PCs, and every later phase runs in a different room.
    const logText = await Deno.readTextFile(join(dir, "master.err")).catch(() => "");
    if (v.log) await Deno.writeTextFile(v.log, logText);
    const count = (re: RegExp) => (logText.match(re) ?? []).length;
    out.push([
      "scheduler: demotions, moves, requeued (master log)",
      `${count(/ master\.demoted /g)}, ${count(/ master\.move /g)}, ${
        count(/ master\.requeued /g)
      }`,
    ]);
    phase("stopped");
    await Deno.remove(dir, { recursive: true });
  }
  const w = Math.max(...out.map(([k]) => k.length));
  console.log(
    `\n${pcs} PCs, ${viewers} viewers (${v["viewer-path"]}), master from ${repo}, ` +
      `load ${loadAtStart} -> ${load()}`,
  );
  for (const [k, val] of out) console.log(`${k.padEnd(w)}  ${val}`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error((err as Error).message);
    Deno.exit(1);
  }
  Deno.exit(0);
}
