// Whether sub-chunk deltas still pay on this target. A disk that holds another image entirely
// (last year's, another OS) holds an "older version" of every used chunk, and a delta of each
// costs the server a decompression and a level-3 compression of nearly the whole chunk (and the
// wire a level-3 copy of what slicing stored at level 5) for no bytes saved. Once enough deltas
// have come and most of their blocks had changed, the rest of the transfer fetches chunks whole.
// Pure.
import { blockCount } from "./delta.ts";

/** Deltas judged before the gauge may turn them off. */
export const DELTA_JUDGE_AFTER = 16;
/** The share of changed blocks above which deltas are not worth their CPU. */
export const DELTA_GIVE_UP = 0.75;

export class DeltaGauge {
  #deltas = 0;
  #blocks = 0;
  #changed = 0;

  /** A delta of a chunk of `blocks` blocks came, `changed` of them patched. */
  record(changed: number, blocks: number): void {
    this.#deltas++;
    this.#blocks += blocks;
    this.#changed += changed;
  }

  /** Deltas still pay: too few have come to judge, or at most DELTA_GIVE_UP of their blocks
   * had changed. */
  get worthIt(): boolean {
    return this.#deltas < DELTA_JUDGE_AFTER || this.#changed <= DELTA_GIVE_UP * this.#blocks;
  }

  /** Record what came for a chunk of `length` bytes (`patched`: a delta's patched blocks, absent
   * for a whole chunk); true the moment deltas stop paying. */
  turnsOff(patched: readonly number[] | undefined, length: number): boolean {
    if (!patched) return false;
    const before = this.worthIt;
    this.record(patched.length, blockCount(length));
    return before && !this.worthIt;
  }

  /** The share of the blocks of the deltas so far that had changed. */
  get share(): number {
    return this.#blocks === 0 ? 0 : this.#changed / this.#blocks;
  }
}
