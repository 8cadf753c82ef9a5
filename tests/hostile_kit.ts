// Shared setup of the hostile-LAN suite (tests/hostile_*_test.ts): a master started with both
// credentials and the netboot routes, a fake server and honest PCs as real processes on
// loopback, and the check every attack test ends with: the honest PCs hold exactly the golden
// image and the master still answers.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { join } from "node:path";
import { rawSession } from "./hostile_ws.ts";
import { fakeNetbootBuild, type Lab, makeLab } from "./lab_kit.ts";

export const ADMIN_TOKEN = "admin-0f1e2d3c";
export const SERVER_TOKEN = "server-4b5a6978";

export interface HostileLab extends Lab {
  url: string;
}

/** A lab whose master has an admin token, a server token and serves /boot (a fake build). */
export async function hostileLab(
  size = 2 * 1024 * 1024,
  masterArgs: string[] = [],
  chunkSize = 256 * 1024,
  /** A command that runs the master (e.g. ["prlimit", "--nofile=256:256"]). */
  wrap: string[] = [],
): Promise<HostileLab> {
  const lab = await makeLab(size, chunkSize);
  const history = masterArgs.includes("--history") ? [] : ["--no-history"];
  try {
    const netboot = join(lab.dir, "netboot");
    await fakeNetbootBuild(netboot, { master: "http://127.0.0.1:8080", after: "serve" });
    const url = await lab.master(
      [
        "--token",
        ADMIN_TOKEN,
        "--server-token",
        SERVER_TOKEN,
        "--netboot",
        netboot,
        ...history,
        "--linger",
        "1",
        ...masterArgs,
      ],
      "master",
      wrap,
    );
    return { ...lab, url };
  } catch (err) {
    await lab.close();
    throw err;
  }
}

/** The fake server's data URL, once it registered. */
export async function fakeUrlOf(lab: HostileLab): Promise<string> {
  const s = await lab.until(
    lab.url,
    (s) => s.peers.some((p) => p.name === "fake" && p.url),
    "the fake server registered",
  );
  return s.peers.find((p) => p.name === "fake")!.url!;
}

/** Start the fake server (with the server token) and `pcs` honest PCs (with no credential). */
export function startHonest(lab: HostileLab, pcs: string[], extra: string[] = []) {
  lab.fake("fake", lab.url, ["--server-token", SERVER_TOKEN, "--capacity", "2", ...extra]);
  for (const pc of pcs) lab.client(pc, lab.url, extra);
}

/** Every honest PC verified (by the master) and byte-identical to the golden image. */
export async function assertHonestImaged(lab: HostileLab, pcs: string[], ms = 60_000) {
  await lab.until(
    lab.url,
    (s) => pcs.every((pc) => s.peers.some((p) => p.name === pc && p.verified)),
    `honest PCs ${pcs.join(", ")} verified`,
    ms,
  );
  for (const pc of pcs) assert.ok(await lab.matches(pc), `${pc} holds the golden image`);
  await assertMasterAnswers(lab);
}

/** The master still answers its status route promptly. */
export async function assertMasterAnswers(lab: HostileLab) {
  const res = await fetch(`${lab.url}/api/v1/status`, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  await res.body?.cancel();
}

/** GET `path` from `url` as the host `localAddress` (127.0.0.x on loopback); status and body. */
export function rawGet(
  url: string,
  path: string,
  localAddress: string,
): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port), localAddress });
    const parts: Uint8Array[] = [];
    sock.on(
      "connect",
      () => sock.write(`GET ${path} HTTP/1.1\r\nhost: ${u.host}\r\nconnection: close\r\n\r\n`),
    );
    sock.on("data", (d: Uint8Array) => parts.push(d));
    sock.on("error", reject);
    sock.on("close", () => {
      const text = new TextDecoder().decode(Buffer.concat(parts));
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf("\r\n\r\n") + 4) });
    });
  });
}

/** Send GET `path` from `localAddress` and keep the connection: resolves with the status once
 * the head arrived (a stream stays open until `close`). */
export function rawOpen(
  url: string,
  path: string,
  localAddress: string,
): Promise<{ status: number; close: () => void }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port), localAddress });
    let head = "";
    sock.on("connect", () => sock.write(`GET ${path} HTTP/1.1\r\nhost: ${u.host}\r\n\r\n`));
    sock.on("data", (d: Uint8Array) => {
      if (head.includes("\r\n\r\n")) return;
      head += new TextDecoder().decode(d);
      if (!head.includes("\r\n\r\n")) return;
      resolve({
        status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0),
        close: () => sock.destroy(),
      });
    });
    sock.on("error", reject);
    sock.on("close", () => resolve({ status: 0, close: () => {} }));
  });
}

/** Hold `n` idle TCP connections (not a byte sent) to `url` from `localAddress`. */
export async function idleConnections(url: string, n: number, localAddress: string) {
  const u = new URL(url);
  const socks: net.Socket[] = [];
  let refused = 0;
  await Promise.all(Array.from({ length: n }, () =>
    new Promise<void>((resolve) => {
      const s = net.connect({ host: u.hostname, port: Number(u.port), localAddress });
      socks.push(s);
      s.on("connect", () => resolve());
      s.on("error", () => {
        refused++;
        resolve();
      });
    })));
  return { refused: () => refused, close: () => socks.forEach((s) => s.destroy()) };
}

/** Open `n` HTTP connections to `url` from `localAddress`, each sending half a request head (or,
 * `half` false, not a byte) and then nothing (idle): how many the server closed, and how many
 * are still open. */
export function idleRequests(url: string, n: number, localAddress: string, half = true) {
  const u = new URL(url);
  const socks: net.Socket[] = [];
  let closed = 0;
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host: u.hostname, port: Number(u.port), localAddress });
    socks.push(s);
    if (half) s.on("connect", () => s.write(`GET /api/v1/status HTTP/1.1\r\nhost: ${u.host}\r\n`));
    s.on("error", () => {});
    s.on("close", () => closed++);
  }
  return {
    closed: () => closed,
    open: () => n - closed,
    close: () => socks.forEach((s) => s.destroy()),
  };
}

/** The master's /metrics, one number per series (its whole line's name and labels). */
export async function metricsOf(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^(\S+) (\S+)$/.exec(line);
    if (m && !line.startsWith("#")) out.set(m[1], Number(m[2]));
  }
  return out;
}

/** A server that registers with the server token and answers every data request with
 * `answer`; counts the chunk requests (the manifest's, which PCs ask any holder the master
 * names and check, apart). */
export async function rogue(
  lab: HostileLab,
  name: string,
  capacity: number,
  answer: (req: Request) => Response | Promise<Response>,
) {
  let requests = 0;
  let manifestRequests = 0;
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (new URL(req.url).pathname === "/v1/manifest") manifestRequests++;
    else requests++;
    return answer(req);
  });
  const session = await rawSession(lab.url);
  session.send({
    type: "hello",
    version: 1,
    role: "fake",
    name,
    imageId: lab.imageId,
    port: http.addr.port,
    capacity,
    held: lab.manifest.chunks.length,
    complete: true,
    token: SERVER_TOKEN,
  });
  await session.next((m) => m.type === "welcome");
  return {
    requests: () => requests,
    manifestRequests: () => manifestRequests,
    async close() {
      session.close();
      await http.shutdown();
    },
  };
}
