// Who gets the imaging script at network boot. Pure (time comes in as an argument; the history
// lookups come in as functions): the master asks `decide` for every boot request.
//
// A PC is enrolled when the groups file lists it, when it booted while an admin's enrolment
// window was open ("image every new PC that boots in the next N minutes"; remembered in the
// history, so a PC mid-imaging that reboots is still enrolled), or when the master runs with
// `--enrol all`. An enrolled PC is imaged unless it already holds the current image; every
// other PC boots its own disk (the core lists it as "booted, not enrolled" for the dashboard).
// A master with several images gives each PC its group's image (the group's "image = NAME").
import type { BootDecision, FinishStep } from "../../netboot/mod.ts";
import type { Group, Groups } from "./groups.ts";

export interface EnrolmentStore {
  /** The image a PC was imaged and verified with, if any. */
  imagedWith(mac: string): string | null;
  /** The group (or "" for none) a PC was enrolled into through a window, if it was. */
  enrolledAs(mac: string): string | null;
  enrol(mac: string, group: string): void;
}

export interface EnrolWindow {
  /** Until when (master clock, seconds) new PCs are enrolled. */
  until: number;
  group?: string;
}

export class Enrolment {
  #window: EnrolWindow | null = null;

  /**
   * `imageId` is the default image (the master's first); `images` maps every image name the
   * master serves to its id, so a group can name its own (checked here, once).
   */
  constructor(
    readonly groups: Groups | undefined,
    readonly all: boolean,
    readonly imageId: string,
    private readonly store: EnrolmentStore,
    private readonly images?: ReadonlyMap<string, string>,
  ) {
    for (const g of groups?.groups ?? []) {
      if (g.image === undefined || !images || images.has(g.image)) continue;
      throw new TypeError(
        `Group "${g.name}" names image "${g.image}", but this master serves ${
          [...images.keys()].map((n) => `"${n}"`).join(", ")
        } (--image NAME=DIR)`,
      );
    }
  }

  /** The image a PC gets: its group's, else the default. */
  imageOf(mac: string): string {
    const name = this.groupOf(mac)?.image;
    return (name !== undefined ? this.images?.get(name) : undefined) ?? this.imageId;
  }

  /** Every MAC of a group: listed in the groups file or enrolled into it through a window. */
  membersOf(group: string, enrolledInto: (group: string) => string[] = () => []): string[] {
    const g = this.groups?.groups.find((x) => x.name === group);
    if (!g) throw new TypeError(`Unknown group "${group}": not in the groups file`);
    return [...new Set([...g.pcs.keys(), ...enrolledInto(group)])];
  }

  /** Open (or replace) the window: every PC that boots before `until` is enrolled. */
  openWindow(until: number, group?: string): EnrolWindow {
    if (group !== undefined && !this.groups?.groups.some((g) => g.name === group)) {
      throw new TypeError(`Unknown group "${group}": not in the groups file`);
    }
    this.#window = { until, ...(group !== undefined ? { group } : {}) };
    return this.#window;
  }

  window(now: number): EnrolWindow | null {
    return this.#window && this.#window.until > now ? this.#window : null;
  }

  /** The PC's group, from the groups file or the window it was enrolled in. */
  groupOf(mac: string): Group | undefined {
    const listed = this.groups?.byMac.get(mac);
    if (listed) return listed;
    const name = this.store.enrolledAs(mac);
    return name ? this.groups?.groups.find((g) => g.name === name) : undefined;
  }

  #enrolled(mac: string, now: number): boolean {
    if (this.all || this.groups?.byMac.has(mac) || this.store.enrolledAs(mac) !== null) return true;
    const w = this.window(now);
    if (!w) return false;
    this.store.enrol(mac, w.group ?? "");
    return true;
  }

  decide(mac: string, now: number): BootDecision {
    if (!this.#enrolled(mac, now)) return { action: "local", reason: "not-enrolled" };
    const imageId = this.imageOf(mac);
    if (this.store.imagedWith(mac) === imageId) return { action: "local", reason: "imaged" };
    const g = this.groupOf(mac);
    return {
      action: "image",
      ...(g ? { group: g.name } : {}),
      ...(g?.target !== undefined ? { target: g.target } : {}),
      ...(g?.after !== undefined ? { after: g.after } : {}),
      ...(imageId !== this.imageId ? { imageId } : {}),
    };
  }

  /** The finishing step for a PC, with its environment (group settings and the PC's name). */
  finishStep(mac: string): FinishStep | undefined {
    const g = this.groupOf(mac);
    if (!g?.finish) return undefined;
    return {
      group: g.name,
      name: g.finish.name,
      script: g.finish.script,
      env: { ...g.settings, CASCADE_GROUP: g.name, CASCADE_PC_NAME: g.pcs.get(mac) ?? "" },
    };
  }
}
