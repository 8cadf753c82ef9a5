// Hostile LAN, a fuzzer: for a bounded time (CASCADE_FUZZ_MS, default 10 s; seeded, the seed in
// CASCADE_FUZZ_SEED or a fixed one, printed), random and malformed input to the control protocol
// (JSON of every message type with wrong fields, bad JSON, binary, fragments, control opcodes,
// oversized frames), the boot routes, the master's routes and a chunk server's routes, from
// many loopback addresses, while two honest PCs image. The master must never crash, never
// answer 500 (an internal error is a bug), still answer, and the honest PCs end byte-identical.
import assert from "node:assert/strict";
import { mulberry32 } from "../imagetools/testkit.ts";
import { assertHonestImaged, hostileLab, startHonest } from "./hostile_kit.ts";
import { rawSession } from "./hostile_ws.ts";

const FUZZ_MS = Number(Deno.env.get("CASCADE_FUZZ_MS") ?? 10_000);
const SEED = Number(Deno.env.get("CASCADE_FUZZ_SEED") ?? 20261202);

const TYPES = [
  "hello",
  "progress",
  "received",
  "failed",
  "verified",
  "proof",
  "finished",
  "server-ready",
  "bye",
  "nonsense",
];

class Fuzz {
  constructor(readonly next: () => number) {}
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  /** A value of any JSON kind, often an edge of its kind. */
  value(depth = 0): unknown {
    switch (this.int(depth > 2 ? 6 : 9)) {
      case 0:
        return this.pick([0, -1, 1, 2 ** 53, -(2 ** 63), 1e308, 0.5, 65536, 4096]);
      case 1:
        return this.pick(["", "a", "../../etc/passwd", "%00", "\u0000", "x".repeat(5000)]);
      case 2:
        return this.pick([true, false, null]);
      case 3:
        return this.pick(["52:54:00:12:34:56", "ff:ff:ff:ff:ff:ff", "zz", "0".repeat(64)]);
      case 4:
        return this.pick(["http://10.0.0.1:1/", "file:///etc/passwd", "javascript:1", "client"]);
      case 5:
        return this.int(1000);
      case 6:
        return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = this.int(4); i > 0; i--) o[this.pick(FIELDS)] = this.value(depth + 1);
        return o;
      }
    }
  }
  /** A control message: a real type with its usual fields, some replaced or dropped. */
  message(imageId: string): unknown {
    const base: Record<string, unknown> = {
      type: this.pick(TYPES),
      version: 1,
      role: this.pick(["client", "server", "fake", "relay", 7]),
      name: this.pick(["fz", "pc1", "fake", "", "a".repeat(300), "名前"]),
      imageId: this.pick([imageId, "0".repeat(64), "x"]),
      port: this.pick([9, 0, 65536, -1, "80"]),
      capacity: this.pick([1, 0, 1e9, -3]),
      held: this.pick([0, 8, 1e12, -1]),
      complete: this.pick([true, false, "yes"]),
    };
    for (let i = this.int(5); i > 0; i--) base[this.pick(FIELDS)] = this.value();
    if (this.int(5) === 0) delete base[this.pick(Object.keys(base))];
    return base;
  }
  path(): string {
    const p = this.pick(PATHS);
    const q = this.int(3) === 0
      ? `?${this.pick(["mac", "image", "from", "to", "view"])}=${
        encodeURIComponent(String(this.value(3)))
      }`
      : "";
    return p.replace(/\{n\}/g, () => String(this.value(3))) + q;
  }
}

/** Text that is not JSON, or not an object. */
const BROKEN = ['{"type":"hello",', '{"type":"hello"}}', "[[", "null", '"hello"', "\u0000", "{"];

const FIELDS = [
  "type",
  "held",
  "bytes",
  "rate",
  "server",
  "reason",
  "detail",
  "ok",
  "bad",
  "seconds",
  "sha256",
  "mac",
  "url",
  "token",
  "switch",
  "probe",
  "disk",
  "step",
  "__proto__",
  "constructor",
];

const PATHS = [
  "/boot/ipxe",
  "/boot/ipxe?mac={n}",
  "/boot/grub/{n}",
  "/boot/finish?mac={n}",
  "/boot/pxelinux.cfg/{n}",
  "/boot/first-stage.ipxe",
  "/boot/{n}",
  "/api/v1/status",
  "/api/v1/manifest",
  "/api/v1/image",
  "/api/v1/peers/{n}",
  "/api/v1/feed",
  "/api/v1/control",
  "/metrics",
  "/",
  "/{n}",
];

const DATA = [
  "/v1/manifest",
  "/v1/health",
  "/v1/chunks/{n}",
  "/v1/stream?from={n}&to={n}",
  "/v1/image",
  "/v1/delta/{n}",
  "/v1/{n}",
];

Deno.test("hostile: a seeded fuzzer of the control protocol, boot, master and chunk routes", async () => {
  console.log(`fuzz seed ${SEED}, ${FUZZ_MS} ms`);
  const f = new Fuzz(mulberry32(SEED));
  const lab = await hostileLab(2 * 1024 * 1024);
  const odd: string[] = [];
  const counts = { sessions: 0, messages: 0, requests: 0 };
  try {
    startHonest(lab, ["pc1", "pc2"]);
    const fakeUrl = (await lab.until(
      lab.url,
      (s) => s.peers.some((p) => p.name === "fake" && p.url),
      "the fake server registered",
    )).peers.find((p) => p.name === "fake")!.url!;
    const end = Date.now() + FUZZ_MS;

    const controlWorker = async () => {
      while (Date.now() < end) {
        const from = `127.0.4.${1 + f.int(250)}`;
        let s;
        try {
          s = await rawSession(lab.url, from);
        } catch (err) {
          // A cap may refuse an upgrade (503); anything else is odd.
          if (!/503/.test((err as Error).message)) odd.push(`upgrade: ${(err as Error).message}`);
          continue;
        }
        counts.sessions++;
        for (let i = f.int(12); i > 0 && !s.isClosed(); i--) {
          counts.messages++;
          switch (f.int(8)) {
            case 0:
              s.frame(1, new TextEncoder().encode(f.pick(BROKEN)));
              break;
            case 1:
              s.frame(2, crypto.getRandomValues(new Uint8Array(f.int(300))));
              break;
            case 2:
              s.frame(f.pick([0, 3, 9, 10, 11, 15]), new Uint8Array(f.int(20)));
              break;
            case 3:
              s.frame(1, new TextEncoder().encode(JSON.stringify(f.message(lab.imageId))), false);
              break;
            case 4:
              s.frame(1, new Uint8Array(17 * 1024).fill(0x20));
              break;
            default:
              s.send(f.message(lab.imageId));
          }
          await new Promise((r) => setTimeout(r, f.int(20)));
        }
        s.close();
      }
    };

    const httpWorker = async () => {
      while (Date.now() < end) {
        const data = f.int(3) === 0;
        const path = data ? f.pick(DATA).replace(/\{n\}/g, () => String(f.value(3))) : f.path();
        const base = data ? fakeUrl : lab.url;
        const method = f.pick(["GET", "GET", "GET", "POST", "PUT", "HEAD", "OPTIONS"]);
        const admin = !data && f.int(6) === 0;
        const url = admin
          ? `${lab.url}/api/v1/admin/${f.pick(["pause", "end", "x", "reimage"])}`
          : `${base}${path}`;
        counts.requests++;
        try {
          const res = await fetch(url, {
            method: admin ? "POST" : method,
            headers: {
              authorization: f.pick(["", "Bearer x", `Bearer ${"0".repeat(32)}.${"1".repeat(64)}`]),
              "accept-encoding": f.pick(["gzip", "zstd", "br", "*"]),
              "last-event-id": String(f.value(3)).replace(/[^\x20-\x7e]/g, "").slice(0, 200),
              "content-type": "application/json",
            },
            body: admin || method === "POST" || method === "PUT"
              ? JSON.stringify(f.value())
              : undefined,
            signal: AbortSignal.timeout(1000),
          });
          await res.body?.cancel();
          if (res.status >= 500 && res.status !== 503) {
            odd.push(`${admin ? "POST" : method} ${url}: ${res.status}`);
          }
        } catch (err) {
          // A stream cut by our own timeout is expected; a refused connection is not.
          const e = err as Error;
          if (e.name !== "TimeoutError" && e.name !== "AbortError") {
            odd.push(`${admin ? "POST" : method} ${url}: ${e.message}`);
          }
        }
      }
    };

    await Promise.all([controlWorker(), controlWorker(), httpWorker(), httpWorker()]);
    console.log(
      `fuzz: ${counts.sessions} sessions, ${counts.messages} frames, ${counts.requests} requests`,
    );
    assert.deepEqual(odd, [], "no 5xx (but 503) and no refused connection");
    assert.ok(lab.procs.running("master"), "the master still runs");
    const log = await lab.procs.logText("master");
    assert.doesNotMatch(log, /internal-error|http-error/, "no internal error in the master");
    await assertHonestImaged(lab, ["pc1", "pc2"]);
  } finally {
    await lab.close();
  }
});
