// Hostile LAN, limits: what a stranger can hold of the master and the chunk servers is bounded.
// A session that never says hello is closed, a flooding session is cut off, one address cannot
// take every slot, viewers are capped with a clear 503, and idle connections up to the
// descriptor limit end no process (the accept loop listens again).
import assert from "node:assert/strict";
import {
  assertHonestImaged,
  assertMasterAnswers,
  fakeUrlOf,
  hostileLab,
  idleConnections,
  rawOpen,
  startHonest,
} from "./hostile_kit.ts";
import { clientHello, type RawSession, rawSession } from "./hostile_ws.ts";

/** `p`, or a failure naming `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("hostile: silent and flooding sessions are closed; one address or many viewers cannot take every slot", async () => {
  const lab = await hostileLab(2 * 1024 * 1024);
  const held: { close(): void }[] = [];
  try {
    startHonest(lab, ["pc1", "pc2"]);
    // A session that never says hello.
    const silent = await rawSession(lab.url, "127.0.0.31");
    held.push(silent);
    // A session that says hello, then floods progress reports.
    const flood = await rawSession(lab.url, "127.0.0.32");
    held.push(flood);
    flood.send(clientHello("flood", lab.imageId));
    await flood.next((m) => m.type === "welcome");
    for (let i = 0; i < 300; i++) flood.send({ type: "progress", held: 0, bytes: 0, rate: 0 });
    const cut = await flood.next((m) => m.type === "error");
    assert.match(String(cut.message), /^Too many messages: at most 20 a second/);
    await within(flood.closed, 5000, "the flooding session closed");
    // One address holds 61 sessions (64 descriptors: a connection counts 4, what a relayed one
    // holds, until it is a session, 1); the 62nd is closed at once; others are still served.
    const many: RawSession[] = [];
    for (let i = 0; i < 61; i++) many.push(await rawSession(lab.url, "127.0.0.33"));
    held.push(...many);
    await assert.rejects(rawSession(lab.url, "127.0.0.33"), /closed unanswered|ECONNRESET/);
    await assertMasterAnswers(lab);
    // Viewers: 64 at once, from 64 addresses; the 65th gets 503.
    const viewers = [];
    for (let i = 0; i < 64; i++) {
      const v = await rawOpen(lab.url, "/api/v1/feed/events", `127.0.1.${i + 1}`);
      held.push(v);
      viewers.push(v.status);
    }
    assert.deepEqual(new Set(viewers), new Set([200]));
    assert.equal((await rawOpen(lab.url, "/api/v1/events", "127.0.2.1")).status, 503);
    // The hello deadline closes the silent ones (10 s), which frees their address's slots.
    await within(silent.closed, 20_000, "the silent session closed");
    assert.match(String(silent.received.find((m) => m.type === "error")?.message), /No hello/);
    await within(Promise.all(many.map((s) => s.closed)), 20_000, "the 61 silent sessions closed");
    const again = await rawSession(lab.url, "127.0.0.33");
    held.push(again);
    await assertHonestImaged(lab, ["pc1", "pc2"]);
  } finally {
    for (const h of held) h.close();
    await lab.close();
  }
});

Deno.test("hostile: idle connections up to the descriptor limit end neither the master nor a chunk server", async () => {
  const lab = await hostileLab(2 * 1024 * 1024);
  const floods: { close(): void }[] = [];
  try {
    startHonest(lab, []);
    const fakeUrl = await fakeUrlOf(lab);
    // 256 descriptors each (a netbooted PC's limit was 4096: the same, only sooner).
    for (const name of ["master", "fake"]) {
      const pid = lab.procs.procs.get(name)!.child.pid;
      const p = await new Deno.Command("prlimit", {
        args: ["--pid", String(pid), "--nofile=256:256"],
      }).output();
      assert.ok(p.success, new TextDecoder().decode(p.stderr));
    }
    // The master counts descriptors per address (64), with a total cap made for the limit it
    // started with: 400 from 25 addresses pass its caps and reach the lowered limit.
    for (let i = 0; i < 25; i++) {
      floods.push(await idleConnections(lab.url, 16, `127.0.0.${51 + i}`));
    }
    // The fake keeps 64 connections an address (conn_gate.ts): 400 from 8 addresses.
    for (let i = 0; i < 8; i++) {
      floods.push(await idleConnections(fakeUrl, 50, `127.0.0.${51 + i}`));
    }
    // Both ran out of descriptors (accept failed) and are still running.
    await lab.until(lab.url, () => true, "master").catch(() => {});
    for (const name of ["master", "fake"]) {
      const log = await lab.procs.logText(name);
      for (let i = 0; i < 50 && !/accept\.failed/.test(log); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(await lab.procs.logText(name), /accept\.failed .*Too many open files/, name);
      assert.ok(lab.procs.running(name), `${name} still running\n${await lab.logs()}`);
    }
    for (const f of floods) f.close();
    // Once the descriptors are free, both listen again and the room images.
    await lab.until(lab.url, () => true, "the master listens again");
    for (const name of ["master", "fake"]) {
      assert.ok(lab.procs.running(name), `${name} still running\n${await lab.logs()}`);
    }
    for (const pc of ["pc1", "pc2"]) lab.client(pc, lab.url);
    await assertHonestImaged(lab, ["pc1", "pc2"]);
    assert.match(await lab.procs.logText("master"), /accept\.again/);
  } finally {
    for (const f of floods) f.close();
    await lab.close();
  }
});
