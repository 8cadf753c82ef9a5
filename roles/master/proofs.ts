// The master's challenges: a PC that says it holds the image proves it (roles/protocol/proof.ts)
// before it counts or serves; core.ts sends the challenges and takes the answers through this.
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

  challenge(session: SessionKey, peer: PeerRecord, counts: boolean, readbackSeconds: number) {
    const { nonce, chunks } = this.host.io.prover.challenge();
    this.#challenges.set(peer.id, { session, nonce, chunks, counts, readbackSeconds });
    this.host.event("challenge", { peer: peer.id, chunks: chunks.join(",") });
    this.host.io.send(session, { type: "challenge", nonce, chunks });
  }

  proof(session: SessionKey, peer: PeerRecord, answer: string) {
    const ch = this.#challenges.get(peer.id);
    if (!ch || ch.session !== session) {
      return this.host.reject(session, `Unexpected "proof" from ${peer.state} peer "${peer.id}"`);
    }
    this.#challenges.delete(peer.id);
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

  /** Resolves once every proof check in flight has been decided (for tests). */
  async settled(): Promise<void> {
    while (this.#checks.size > 0) await Promise.all([...this.#checks]);
  }

  /** The peer's session ended: its challenge is void. */
  forget(peerId: string) {
    this.#challenges.delete(peerId);
  }
}
