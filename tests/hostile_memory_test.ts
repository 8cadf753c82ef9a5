// Hostile LAN, memory: one peer floods failures (each its own made-up reason, 1 KiB of detail,
// reconnecting whenever its session's rate cap cuts it) while 20 dashboards watch, half of them
// never reading what they are sent. Before: 1.8 GB and 5 s a status request. Now the master's
// RSS after 4N failures stays within a bound of what it was after N, the status still answers
// with the flood kept to its last failures, and the honest PCs image.
import assert from "node:assert/strict";
import net from "node:net";
import { assertHonestImaged, hostileLab, metricsOf, startHonest } from "./hostile_kit.ts";
import { clientHello, rawSession } from "./hostile_ws.ts";

const N = 2000;
/** Failures per session: within its burst of 60 messages. */
const PER_SESSION = 50;
const OTHER = 'cascade_chunk_failures_total{image="golden.img",reason="other"}';

/** A dashboard viewer from `localAddress`; one that does not read takes nothing off its socket. */
function viewer(url: string, path: string, localAddress: string, reads: boolean) {
  const u = new URL(url);
  let bytes = 0;
  const sock = net.connect({ host: u.hostname, port: Number(u.port), localAddress });
  sock.on("connect", () => {
    sock.write(`GET ${path} HTTP/1.1\r\nhost: ${u.host}\r\n\r\n`);
    if (!reads) sock.pause();
  });
  sock.on("data", (d: Uint8Array) => (bytes += d.length));
  sock.on("error", () => {});
  return { bytes: () => bytes, close: () => sock.destroy() };
}

function rssMiB(pid: number): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(text)![1]) / 1024;
}

Deno.test("hostile: a peer flooding failures while 20 dashboards watch keeps the master's memory bounded", async () => {
  const lab = await hostileLab(2 * 1024 * 1024);
  const viewers: ReturnType<typeof viewer>[] = [];
  try {
    startHonest(lab, []);
    await lab.until(lab.url, (s) => s.peers.some((p) => p.name === "fake" && p.url), "fake");
    const pid = lab.procs.procs.get("master")!.child.pid;
    for (let i = 0; i < 20; i++) {
      const path = i % 2 ? "/api/v1/events" : "/api/v1/feed/events";
      viewers.push(viewer(lab.url, path, `127.0.3.${i + 1}`, i < 10));
    }
    let sent = 0;
    /** Send `n` more failures, a session of PER_SESSION at a time, each counted by the master. */
    const flood = async (n: number) => {
      for (const end = sent + n; sent < end;) {
        const s = await rawSession(lab.url, "127.0.0.44");
        s.send(clientHello("flood", lab.imageId));
        await s.next((m) => m.type === "welcome");
        for (let i = 0; i < PER_SESSION; i++, sent++) {
          s.send({
            type: "failed",
            server: "fake",
            reason: `made-up-${sent}`,
            detail: `${sent} `.padEnd(1024, "x"),
          });
        }
        for (let k = 0; k < 200 && (await metricsOf(lab.url)).get(OTHER) !== sent; k++) {
          await new Promise((r) => setTimeout(r, 50));
        }
        s.close();
      }
      assert.equal((await metricsOf(lab.url)).get(OTHER), sent, "every failure counted");
    };
    const status = async () => {
      const t = performance.now();
      const res = await fetch(`${lab.url}/api/v1/status`);
      const body = await res.json();
      return { status: res.status, body, ms: performance.now() - t };
    };
    // Each phase ends with 3 s of the dashboards' updates (one a second) to every viewer.
    const settle = () => new Promise((r) => setTimeout(r, 3000));
    await flood(N);
    await settle();
    const rssN = rssMiB(pid);
    const atN = await status();
    await flood(3 * N);
    await settle();
    const rss4N = rssMiB(pid);
    const at4N = await status();
    console.log(
      `master RSS after ${N} failures ${rssN.toFixed(0)} MiB, after ${4 * N} ${
        rss4N.toFixed(0)
      } MiB; status ${atN.ms.toFixed(0)} ms, ${at4N.ms.toFixed(0)} ms; viewers read ${
        viewers.map((v) => v.bytes()).join(",")
      } bytes`,
    );
    for (const s of [atN, at4N]) {
      assert.equal(s.status, 200);
      const floods = s.body.peers.filter((p: { name: string }) => p.name === "flood");
      assert.ok(floods.length >= 1 && floods.length <= 3, `${floods.length} flood records`);
      for (const p of floods) {
        assert.ok(p.failures.length <= 10, `${p.failures.length} failures kept`);
        for (const f of p.failures) assert.ok(f.detail.length <= 200 && f.reason === "other");
      }
    }
    // Measured on loopback: 87 -> 101 MiB and 77 -> 85 MiB (status 2-4 ms); on to 32,000
    // failures it levels off (100, 125, 140, 146 MiB at 8,000 more each). What was kept per
    // failure before (1.8 GB) would be far past this bound.
    assert.ok(rss4N < rssN + 64, `RSS ${rssN.toFixed(0)} -> ${rss4N.toFixed(0)} MiB`);
    for (const pc of ["pc1", "pc2"]) lab.client(pc, lab.url);
    await assertHonestImaged(lab, ["pc1", "pc2"]);
  } finally {
    for (const v of viewers) v.close();
    await lab.close();
  }
});
