// Test helpers for the master's HTTP face: a MasterCore on a hand-driven clock with scripted
// peers, and a sample run in mid-flight (every state on show) for the dashboard, tree, metrics
// and app tests. Sessions are plain objects: no sockets.
import { type Manifest, MANIFEST_FORMAT } from "../../imagetools/mod.ts";
import { type MasterConfig, MasterCore, type Prover } from "./core.ts";
import { createMasterApp, type MasterAppOptions } from "./app.ts";
import {
  type ChallengeMessage,
  type HelloMessage,
  type MasterMessage,
  type PeerMessage,
  type PeerRole,
  proofOf,
  PROTOCOL_VERSION,
} from "../protocol/mod.ts";

export const IMAGE_ID = "ab".repeat(32);

/** Stands in for the master's copy of the image: chunk i is CHUNK bytes of value i % 256. */
export function testChunk(i: number): Uint8Array {
  return new Uint8Array(1024).fill(i % 256);
}

/** A prover over testChunk; challenges count up (nonce "n1", "n2", ...; chunks 1, 2). */
let challenges = 0;
export const TEST_PROVER: Prover = {
  challenge: () => ({ nonce: `n${++challenges}`, chunks: [1, 2] }),
  expected: (nonce, chunks) => proofOf(nonce, chunks.map(testChunk)),
};
const CHUNK = 1024 * 1024;
const CHUNKS = 64;

export const SAMPLE_MANIFEST: Manifest = {
  format: MANIFEST_FORMAT,
  name: "lab-2026.img",
  size: CHUNKS * CHUNK,
  chunkSize: CHUNK,
  md5: "0".repeat(32),
  sha256: "1".repeat(64),
  chunks: Array.from({ length: CHUNKS }, () => ({
    md5: "2".repeat(32),
    sha256: "3".repeat(64),
    zero: false,
  })),
};

export interface CoreHarness {
  core: MasterCore;
  /** The core's clock, in seconds. */
  time: { now: number };
  sent: { to: string; msg: MasterMessage }[];
  /** Sessions the core closed, by name, in order. */
  closed: string[];
  /** The core's end reason, once it ended the run. */
  ended(): string | null;
  /** Move the clock on by `seconds`. */
  advance(seconds: number): void;
  /** What the core sent to `name`, in order. */
  to(name: string): MasterMessage[];
  open(name: string, address?: string): void;
  hello(name: string, role: HelloMessage["role"], extra?: Partial<HelloMessage>): void;
  say(name: string, msg: PeerMessage): void;
  drop(name: string): void;
  /** Answer the last challenge sent to `name` rightly. */
  prove(name: string): void;
}

/** A peer's hello for IMAGE_ID (a fake server or server holds it all, a client nothing). */
export function helloMessage(
  name: string,
  role: HelloMessage["role"],
  extra: Partial<HelloMessage> = {},
): HelloMessage {
  return {
    type: "hello",
    version: PROTOCOL_VERSION,
    role,
    name,
    imageId: IMAGE_ID,
    port: 9000,
    capacity: role === "fake" ? 2 : 3,
    held: 0,
    complete: role !== "client",
    ...extra,
  } as HelloMessage;
}

const tokenOf = (config: Partial<MasterConfig>, role: PeerRole) =>
  config.serverToken !== undefined && role !== "client" ? { token: config.serverToken } : {};

export function coreHarness(config: Partial<MasterConfig> = {}): CoreHarness {
  const time = { now: 1000 };
  const sent: { to: string; msg: MasterMessage }[] = [];
  const names = new Map<object, string>();
  const keys = new Map<string, object>();
  const core = new MasterCore({
    mode: "classic",
    linger: 30,
    fanout: 1,
    imageId: IMAGE_ID,
    totalChunks: CHUNKS,
    imageBytes: CHUNKS * CHUNK,
    ...config,
  }, {
    now: () => time.now,
    send: (s, msg) => sent.push({ to: names.get(s)!, msg }),
    close: (s) => closed.push(names.get(s)!),
    log: () => {},
    onEnd: (reason) => (ended = reason),
    random: (bytes) => String(++seq).padStart(bytes * 2, "0"),
    prover: TEST_PROVER,
  });
  let seq = 0;
  const closed: string[] = [];
  let ended: string | null = null;
  const h: CoreHarness = {
    core,
    time,
    sent,
    closed,
    ended: () => ended,
    advance: (seconds) => (time.now += seconds),
    to: (name) => sent.filter((s) => s.to === name).map((s) => s.msg),
    open(name, address = "10.0.0.1") {
      const key = { name };
      names.set(key, name);
      keys.set(name, key);
      core.connect(key, address);
    },
    hello(name, role, extra = {}) {
      if (!keys.has(name)) h.open(name);
      h.say(name, helloMessage(name, role, { ...tokenOf(config, role), ...extra }));
    },
    say(name, msg) {
      core.message(keys.get(name)!, msg);
    },
    drop(name) {
      core.disconnect(keys.get(name)!);
    },
    prove(name) {
      const ch = h.to(name).findLast((m) => m.type === "challenge") as ChallengeMessage;
      h.say(name, { type: "proof", sha256: proofOf(ch.nonce, ch.chunks.map(testChunk)) });
    },
  };
  return h;
}

/**
 * A classic-mode run 42 s in: pc-01 imaged and serving pc-03..05 (each at its own point),
 * pc-02 verifying, pc-06 waiting, pc-07 failed (a bad chunk, then gone), a PC booting, and the
 * fake server idle in the server queue.
 */
export function sampleRun(config: Partial<MasterConfig> = {}): CoreHarness {
  return playSample(coreHarness({ expect: 8, ...config }));
}

/** Play the sample run on `h` (subscribe to its core first to see every event). */
export function playSample(h: CoreHarness): CoreHarness {
  const at = (t: number) => (h.time.now = 1000 + t);
  const MiB = CHUNK;
  h.open("fake-server", "10.0.0.2");
  h.hello("fake-server", "fake");
  at(1);
  // pc-01 and pc-02 netbooted: their hellos are bound to those boot requests (MAC, address).
  h.core.booting("52:54:00:00:01:01", "10.0.1.1");
  h.core.booting("52:54:00:00:01:02", "10.0.1.2");
  h.open("pc-01", "10.0.1.1");
  h.hello("pc-01", "client", { mac: "52:54:00:00:01:01" });
  h.open("pc-02", "10.0.1.2");
  h.hello("pc-02", "client", { mac: "52:54:00:00:01:02" });
  at(3);
  for (const n of ["pc-03", "pc-04", "pc-05", "pc-07"]) {
    h.open(n, `10.0.1.${n.slice(-1)}`);
    h.hello(n, "client");
  }
  at(12);
  h.say("pc-01", { type: "progress", held: 64, bytes: 64 * MiB, rate: 6 * MiB });
  h.say("pc-01", { type: "received" });
  at(13);
  h.say("pc-01", { type: "verified", ok: true, bad: [], seconds: 1.2 });
  h.prove("pc-01");
  at(20);
  h.say("pc-02", { type: "progress", held: 64, bytes: 64 * MiB, rate: 3.5 * MiB });
  h.say("pc-02", { type: "received" });
  at(34);
  h.core.tick(); // pc-07 has lingered long enough: a partial batch from the fake server
  at(36);
  h.say("pc-07", {
    type: "failed",
    server: "fake-server",
    reason: "bad-chunk",
    detail: 'Chunk 12 failed its SHA-256 check from "fake-server"',
  });
  at(37);
  h.drop("pc-07");
  at(38);
  h.open("pc-06", "10.0.1.6");
  h.hello("pc-06", "client");
  at(41);
  h.say("pc-03", { type: "progress", held: 48, bytes: 48 * MiB, rate: 5.5 * MiB });
  h.say("pc-04", { type: "progress", held: 30, bytes: 30 * MiB, rate: 4 * MiB });
  h.say("pc-05", { type: "progress", held: 9, bytes: 9 * MiB, rate: 2.5 * MiB });
  h.core.booting("52:54:00:00:01:09", "10.0.1.9");
  at(42);
  return h;
}

/** Read server-sent events from a response (events with data only), each read bounded so a broken stream fails fast. */
export function sseReader(res: Response) {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const read = async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("No event within 5 s")), 5000);
    });
    try {
      return await Promise.race([reader.read(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    async next(): Promise<{ event: string; data: string; id?: string } | null> {
      for (;;) {
        const end = buf.indexOf("\n\n");
        if (end >= 0) {
          const block = buf.slice(0, end).split("\n");
          buf = buf.slice(end + 2);
          // A block without data (the stream's "retry:" line) is no event.
          if (!block.some((l) => l.startsWith("data: "))) continue;
          const field = (k: string) =>
            block.filter((l) => l.startsWith(`${k}: `)).map((l) => l.slice(k.length + 2));
          return { event: field("event")[0], data: field("data").join("\n"), id: field("id")[0] };
        }
        const { done, value } = await read();
        if (done) return null;
        buf += value;
      }
    },
    cancel: () => reader.cancel(),
  };
}

/** The master's app over a harness's core, with the sample manifest (`options` on top). */
export function harnessApp(h: CoreHarness, options: Partial<MasterAppOptions> = {}) {
  return createMasterApp({
    core: h.core,
    manifest: SAMPLE_MANIFEST,
    manifestBytes: new TextEncoder().encode('{"format":1}'),
    log: () => {},
    now: () => h.time.now,
    ...options,
  });
}
