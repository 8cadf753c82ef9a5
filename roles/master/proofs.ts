// The master's challenges: a PC that says it holds the image proves it (roles/protocol/proof.ts)
// before it counts or serves; core.ts sends the challenges and takes the answers through this.
//
// A client that received the image is challenged at once ("received"), while it reads its disk
// back, not after: the answer (a few chunks read and hashed at both ends, a round trip) is off
// the run's critical path, which ends with the last PC's read-back (bench:lab's phases). It
// still counts only once both are in: a right answer AND its read-back's "verified". The proof
// is over the bytes it holds by then (every chunk was verified before it was written), so the
// challenge proves as much as one sent after the read-back; a read-back that fails voids it.
import type { EventRecord } from "../protocol/mod.ts";
import { type PeerRecord, recordFailure } from "./peer_record.ts";
import { type ReportContext, verified } from "./peer_reports.ts";
import type { SchedulerEvent } from "./scheduler.ts";
import type { Challenge, MasterIo, SessionKey } from "./core_config.ts";

/** What the proofs need of the core. */
export interface ProofHost {
  io: MasterIo;
  reports: ReportContext;
  ended(): boolean;
  sessionOf(peerId: string): SessionKey | undefined;
  reject(session: SessionKey, message: string): void;
  event(event: string, fields?: EventRecord["fields"]): void;
  apply(event: SchedulerEvent): void;
  capacity(announced: number): number;
}

export class Proofs {
  /** Challenges out, by peer id. */
  #challenges = new Map<string, Challenge>();
  /** Proof checks in flight (tests await them through settled()). */
  #checks = new Set<Promise<void>>();

  constructor(private readonly host: ProofHost) {}

  challenge(
    session: SessionKey,
    peer: PeerRecord,
    counts: boolean,
    readbackSeconds: number,
    early = false,
  ) {
    const { nonce, chunks } = this.host.io.prover.challenge();
    this.#challenges.set(peer.id, { session, nonce, chunks, counts, readbackSeconds, early });
    this.host.event("challenge", { peer: peer.id, chunks: chunks.join(",") });
    this.host.io.send(session, { type: "challenge", nonce, chunks });
  }

  /** A client received the whole image: challenge it while it reads its disk back. */
  received(session: SessionKey, peer: PeerRecord) {
    const ch = this.#challenges.get(peer.id);
    // The answer to a challenge its failed read-back voided is still on its way: ask after
    // this read-back instead (one answer to one challenge at a time).
    if (ch?.void) return;
    this.challenge(session, peer, true, 0, true);
  }

  /** A client's read-back found its disk good: it counts once its proof is right too. */
  readBackOk(session: SessionKey, peer: PeerRecord, seconds: number) {
    const ch = this.#challenges.get(peer.id);
    // The voided challenge's answer first (a proof names no nonce): the next goes after it.
    if (ch?.void && ch.session === session) return void (ch.then = seconds);
    if (!ch?.early || ch.session !== session) return this.challenge(session, peer, true, seconds);
    ch.readbackSeconds = seconds;
    ch.readBack = true;
    if (ch.right) this.#counted(session, peer, ch);
  }

  /** A client's read-back failed: a challenge sent before it proves nothing any more. */
  readBackFailed(peer: PeerRecord) {
    const ch = this.#challenges.get(peer.id);
    if (!ch?.early) return;
    if (ch.answered) this.#challenges.delete(peer.id);
    else ch.void = true; // its answer is dropped when it comes
  }

  proof(session: SessionKey, peer: PeerRecord, answer: string) {
    const ch = this.#challenges.get(peer.id);
    if (!ch || ch.session !== session || ch.answered) {
      return this.host.reject(session, `Unexpected "proof" from ${peer.state} peer "${peer.id}"`);
    }
    ch.answered = true;
    if (ch.void) {
      this.#challenges.delete(peer.id);
      if (ch.then !== undefined) this.challenge(session, peer, true, ch.then);
      return;
    }
    // An early challenge stays until the read-back is in too (readBackOk).
    if (!ch.early) this.#challenges.delete(peer.id);
    let expected: string | Promise<string>;
    try {
      expected = this.host.io.prover.expected(ch.nonce, ch.chunks);
    } catch (err) {
      expected = Promise.reject(err);
    }
    if (typeof expected === "string") return this.#proved(session, peer, ch, answer === expected);
    const check = expected.then(
      (right) => this.#proved(session, peer, ch, answer === right),
      (err) => {
        this.host.io.log("proof-error", { peer: peer.id, error: (err as Error).message });
        this.#proved(session, peer, ch, false);
      },
    );
    this.#checks.add(check);
    check.finally(() => this.#checks.delete(check));
  }

  #proved(session: SessionKey, peer: PeerRecord, ch: Challenge, ok: boolean) {
    if (this.host.ended() || this.host.sessionOf(peer.id) !== session) return;
    const now = this.host.io.now();
    if (!ok) {
      recordFailure(peer, { at: now, reason: "proof", detail: "wrong answer to the challenge" });
      this.host.event("proof-failed", { peer: peer.id });
      return this.host.reject(session, `Wrong proof: "${peer.id}" does not hold the image`);
    }
    if (ch.early) {
      if (this.#challenges.get(peer.id) !== ch || ch.void) return;
      ch.right = true;
      if (ch.readBack) this.#counted(session, peer, ch);
      return;
    }
    this.host.event("proved", { peer: peer.id, counts: ch.counts });
    this.host.io.send(session, { type: "proved", counted: ch.counts });
    if (ch.counts) return verified(peer, now, ch.readbackSeconds, this.host.reports);
    // Holds the image, but this run did not image it: it serves, uncounted.
    peer.state = "serving";
    this.host.apply({
      type: "server-ready",
      id: peer.id,
      capacity: this.host.capacity(peer.capacity),
      kind: "server",
      at: now,
    });
  }

  /** An early challenge answered rightly and its read-back good: the client counts. */
  #counted(session: SessionKey, peer: PeerRecord, ch: Challenge) {
    this.#challenges.delete(peer.id);
    this.host.event("proved", { peer: peer.id, counts: true });
    this.host.io.send(session, { type: "proved", counted: true });
    verified(peer, this.host.io.now(), ch.readbackSeconds, this.host.reports);
  }

  /** Resolves once every proof check in flight has been decided (for tests). */
  async settled(): Promise<void> {
    while (this.#checks.size > 0) await Promise.all([...this.#checks]);
  }

  /** The peer's session ended: its challenge is void. */
  forget(peerId: string) {
    this.#challenges.delete(peerId);
  }
}
