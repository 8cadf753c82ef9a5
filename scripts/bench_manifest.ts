// The manifest at the start of a big run: N PCs (default 682) fetch the manifest of a 6 GB image
// from a real master at once, as each client does before its first chunk. Counts the bytes that
// cross the master's port (raw HTTP bodies, before any decoding) and the time until all have it,
// per Accept-Encoding: none (what every PC got before), "gzip,br" (what Deno's fetch, and so the
// Cascade client, sends), "zstd", a re-fetch with If-None-Match, and "from peers": what the
// client does now, asking the master only which peers hold the manifest (4 PCs said hello with
// a URL, so the answer names 4) and fetching the manifest itself from one of them.
//
//   deno run -A scripts/bench_manifest.ts [--pcs 682] [--size 6GB] [--repo DIR]
import { parseArgs } from "node:util";
import { request } from "node:http";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { imageIdOf, MANIFEST_FORMAT, serializeManifest } from "../imagetools/mod.ts";
import { PROTOCOL_VERSION } from "../roles/protocol/mod.ts";

const HELP = `The manifest at the start of a big run: N PCs fetch it from a real master at once.

USAGE
  deno run -A scripts/bench_manifest.ts [OPTIONS]

OPTIONS
  --pcs N       PCs fetching at once (default 682)
  --gb N        image size in GB, 1 MiB chunks (default 6)
  --repo DIR    run the master from this checkout (default: this one)
  --help        this text
`;

function get(
  port: number,
  headers: Record<string, string>,
  path = "/api/v1/manifest",
): Promise<{ bytes: number; status: number; etag?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers }, (res) => {
      let bytes = 0;
      res.on("data", (d: Uint8Array) => (bytes += d.byteLength));
      res.on(
        "end",
        () => resolve({ bytes, status: res.statusCode ?? 0, etag: res.headers.etag as string }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** A PC that says hello with a URL and stays connected: a holder the master can name. */
function holder(port: number, imageId: string, i: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/control`);
  return new Promise((resolve, reject) => {
    ws.onopen = () =>
      ws.send(JSON.stringify({
        type: "hello",
        version: PROTOCOL_VERSION,
        role: "client",
        name: `holder-${i}`,
        imageId,
        port: 20000 + i,
        capacity: 1,
        held: 0,
        complete: false,
      }));
    ws.onmessage = (ev) => {
      const msg = JSON.parse(String(ev.data));
      if (msg.type === "welcome") resolve(ws);
      else reject(new Error(`The master answered the hello with "${String(ev.data)}"`));
    };
    ws.onerror = () => reject(new Error("The holder's control session failed"));
  });
}

async function main() {
  const { values: v } = parseArgs({
    options: {
      pcs: { type: "string", default: "682" },
      gb: { type: "string", default: "6" },
      repo: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (v.help) return console.log(HELP);
  const pcs = Number(v.pcs), gb = Number(v.gb);
  if (!Number.isInteger(pcs) || pcs < 1) throw new RangeError(`Invalid "--pcs" "${v.pcs}"`);
  if (!(gb > 0)) throw new RangeError(`Invalid "--gb" "${v.gb}"`);
  const repo = v.repo ?? new URL("..", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ prefix: "cascade-bench-manifest-" });
  const slices = join(dir, "slices");
  await Deno.mkdir(slices);
  const CHUNK = 1024 * 1024;
  const size = Math.round(gb * 1e9);
  const chunks = Math.ceil(size / CHUNK);
  const hex = (n: number) => randomBytes(n).toString("hex");
  // Every chunk with its own random hashes: no zero chunks, the worst case for compression.
  const entries = Array.from({ length: chunks }, () => ({
    md5: hex(16),
    sha256: hex(32),
    zero: false,
  }));
  const text = serializeManifest({
    format: MANIFEST_FORMAT,
    name: "bench.img",
    size,
    chunkSize: CHUNK,
    md5: hex(16),
    sha256: hex(32),
    chunks: entries,
  });
  await Deno.writeTextFile(join(slices, "manifest.json"), text);
  // The master checks that every chunk file is there and of its length: sparse files are.
  await Deno.mkdir(join(slices, "chunks"));
  for (const [i, e] of entries.entries()) {
    using f = await Deno.open(join(slices, "chunks", `${e.sha256}.chunk`), {
      write: true,
      create: true,
    });
    await f.truncate(i === chunks - 1 ? size - i * CHUNK : CHUNK);
  }
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const master = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(repo, "cascade.ts"),
      "master",
      "--slices",
      slices,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--no-history",
    ],
    // Every emulated PC is on 127.0.0.1: lift the per-address cap (an env var, so an older
    // checkout's master given as the baseline still starts).
    env: { CASCADE_MAX_PER_ADDRESS: "1000000" },
    stdout: "null",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const rows: string[][] = [];
  const holders: WebSocket[] = [];
  try {
    for (let i = 0;; i++) {
      try {
        await get(port, {});
        break;
      } catch {
        if (i > 100) throw new Error("The master did not come up");
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const first = await get(port, { "accept-encoding": "gzip,br" });
    const cases: [string, Record<string, string>][] = [
      ["none (every PC before)", {}],
      ['"gzip,br" (Deno fetch: the client)', { "accept-encoding": "gzip,br" }],
      ['"zstd"', { "accept-encoding": "zstd" }],
      ["re-fetch, If-None-Match", {
        "accept-encoding": "gzip,br",
        ...(first.etag ? { "if-none-match": first.etag } : {}),
      }],
    ];
    // A master from before the route (--repo, as a baseline) gets no "from peers" row.
    const id = imageIdOf(new TextEncoder().encode(text));
    for (let i = 0; i < 4; i++) holders.push(await holder(port, id, i));
    const peers = "/api/v1/manifest/sources";
    const res = await fetch(`http://127.0.0.1:${port}${peers}`);
    const sources = await res.json().catch(() => ({})) as { id?: string; sources?: string[] };
    if (sources.id === id && sources.sources?.length === 4) {
      cases.push([`from peers (${peers}, 4 named)`, { "accept-encoding": "gzip,br" }]);
    } else console.error(`No "from peers" row: the master answered ${res.status} to ${peers}`);
    let base = 0;
    for (const [name, headers] of cases) {
      const path = name.startsWith("from peers") ? peers : undefined;
      const t0 = performance.now();
      const all = await Promise.all(Array.from({ length: pcs }, () => get(port, headers, path)));
      const secs = (performance.now() - t0) / 1000;
      const bytes = all.reduce((n, r) => n + r.bytes, 0);
      if (!base) base = bytes;
      rows.push([
        name,
        String(all[0].status),
        all[0].bytes < 10240 ? `${all[0].bytes} B` : `${(all[0].bytes / 1024).toFixed(0)} KiB`,
        bytes < 1e6 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`,
        bytes && bytes / base < 0.001 ? (bytes / base).toExponential(1) : (bytes / base).toFixed(3),
        `${secs.toFixed(2)} s`,
      ]);
    }
  } finally {
    for (const ws of holders) ws.close();
    master.kill("SIGTERM");
    await master.status;
    await Deno.remove(dir, { recursive: true });
  }
  const head = ["Accept-Encoding", "status", "per PC", `all ${pcs} PCs`, "ratio", "all done"];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i])).join(" | ")} |`;
  console.log(
    `\n${gb} GB image, ${chunks} chunks, manifest ${(text.length / 1024).toFixed(0)} KiB; ` +
      `master from ${repo}`,
  );
  console.log([line(head), line(w.map((n) => "-".repeat(n))), ...rows.map(line)].join("\n"));
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error((err as Error).message);
    Deno.exit(1);
  }
}
