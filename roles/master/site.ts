// A master for a whole site: one run per image (`--image games=DIR --image office=DIR`), each
// with its own core (queues, cascade, status, history row). This file picks the run a request
// or a control session belongs to; every run's own logic stays in its MasterCore.
//
// A control session starts on the first run that has not ended and moves to the run of the
// image its hello names: the core of that image then takes the hello as if the session had
// always been its own. A hello naming an image no run serves is refused, saying which images
// this master serves.
import type { Manifest } from "../../imagetools/mod.ts";
import type { PeerMessage } from "../protocol/mod.ts";
import type { MasterCore, SessionKey } from "./core.ts";

export interface ImageRun {
  /** The image's name on this master (--image NAME=DIR; the manifest's name otherwise). */
  name: string;
  core: MasterCore;
  manifest: Manifest;
  /** The manifest file's bytes, as PCs fetch them (their SHA-256 is the image id). */
  manifestBytes: Uint8Array;
}

/** Image names as given on the command line: letters, digits, . _ - (they go in URLs). */
export const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class Site {
  readonly runs: readonly ImageRun[];
  #bySession = new Map<SessionKey, ImageRun>();
  /** Each session's address until its hello (a move to another run needs it). */
  #addresses = new Map<SessionKey, string>();

  constructor(runs: ImageRun[]) {
    if (runs.length === 0) throw new RangeError("A master needs at least one image");
    const seen = new Map<string, string>();
    for (const r of runs) {
      if (!IMAGE_NAME.test(r.name)) {
        throw new TypeError(`Image name "${r.name}" must be 1 to 64 of A-Z a-z 0-9 . _ -`);
      }
      if (seen.has(r.name)) throw new TypeError(`Image name "${r.name}" is given twice`);
      const other = [...seen].find(([, id]) => id === r.core.config.imageId);
      if (other) {
        throw new TypeError(
          `Images "${other[0]}" and "${r.name}" are the same image (${
            r.core.config.imageId.slice(0, 12)
          }): give it once`,
        );
      }
      seen.set(r.name, r.core.config.imageId);
    }
    this.runs = runs;
  }

  /** The first image given: single-image requests, unenrolled boots and sessions before hello. */
  get main(): ImageRun {
    return this.runs[0];
  }

  /** The run of an image, by its name on this master or its image id (or a 12+ digit prefix). */
  find(key: string): ImageRun | undefined {
    return this.runs.find((r) => r.name === key) ??
      this.runs.find((r) => r.core.config.imageId === key) ??
      (key.length >= 12 ? this.runs.find((r) => r.core.config.imageId.startsWith(key)) : undefined);
  }

  /** "games (ab12…), office (cd34…)": for messages that must say what this master serves. */
  describe(): string {
    return this.runs.map((r) => `${r.name} (${r.core.config.imageId.slice(0, 12)})`).join(", ");
  }

  /** Every run has ended. */
  get ended(): boolean {
    return this.runs.every((r) => r.core.ended !== null);
  }

  end(reason: string) {
    for (const r of this.runs) r.core.end(reason);
  }

  // The control socket's side (app.ts attachControlSocket): the same calls as one MasterCore.
  // Until its hello a session waits in the first run that has not ended (an ended run tells
  // every session it holds that the run is over, which must not reach another image's PC).
  connect(session: SessionKey, address: string) {
    const holding = this.runs.find((r) => !r.core.ended) ?? this.main;
    this.#bySession.set(session, holding);
    if (this.runs.length > 1) this.#addresses.set(session, address);
    holding.core.connect(session, address);
  }

  message(session: SessionKey, msg: PeerMessage) {
    const run = this.#bySession.get(session);
    if (!run) return;
    const address = this.#addresses.get(session);
    this.#addresses.delete(session);
    if (msg.type === "hello" && address !== undefined) {
      const target = this.runs.find((r) => r.core.config.imageId === msg.imageId);
      if (target && target !== run) {
        // Before its hello a session is nobody's peer: the holding run lets it go quietly.
        run.core.disconnect(session);
        this.#bySession.set(session, target);
        target.core.connect(session, address);
        return target.core.message(session, msg);
      }
      if (!target && this.runs.length > 1) {
        return run.core.reject(
          session,
          `Peer holds image "${
            msg.imageId.slice(0, 12)
          }" but this master serves ${this.describe()}`,
        );
      }
    }
    run.core.message(session, msg);
  }

  reject(session: SessionKey, message: string) {
    (this.#bySession.get(session) ?? this.main).core.reject(session, message);
  }

  disconnect(session: SessionKey) {
    const run = this.#bySession.get(session);
    this.#bySession.delete(session);
    this.#addresses.delete(session);
    run?.core.disconnect(session);
  }

  /** The earliest deadline of any run (the shell's ticker), or null. */
  nextDeadline(): number | null {
    const ds = this.runs.map((r) => r.core.nextDeadline()).filter((d) => d !== null);
    return ds.length ? Math.min(...ds) : null;
  }
}
