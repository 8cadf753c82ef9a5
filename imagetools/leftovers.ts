// Names for the hidden work-in-progress siblings that slice and assemble build their output in,
// and the sweep that removes those an interrupted run left behind.
//
// A name records who made it: ".<out>.<kind>-<pid>-<random>@<host>". A later run removes only
// leftovers of its own host whose process is gone, so it never touches a run still going on
// (here, or on another host sharing the folder).
import process from "node:process";
import { basename, dirname, join } from "node:path";

export type LeftoverKind = "partial" | "old";

let host: string | undefined;

function thisHost(): string {
  try {
    host ??= Deno.hostname();
  } catch {
    host = "localhost";
  }
  return host;
}

/** A fresh sibling path of `out` for work in progress. */
export function leftoverPath(out: string, kind: LeftoverKind): string {
  const tag = crypto.randomUUID().slice(0, 8);
  return join(dirname(out), `.${basename(out)}.${kind}-${Deno.pid}-${tag}@${thisHost()}`);
}

/** The process that made a leftover named `name` for `out`, or null if it is not one. */
export function leftoverOwner(out: string, name: string): { pid: number; host: string } | null {
  const prefix = `.${basename(out)}.`;
  if (!name.startsWith(prefix)) return null;
  const m = /^(?:partial|old)-(\d+)-[0-9a-f]{8}@(.+)$/.exec(name.slice(prefix.length));
  return m ? { pid: Number(m[1]), host: m[2] } : null;
}

function alive(pid: number): boolean {
  // A killed process stays a zombie until its parent reaps it (seconds, under some inits):
  // gone for our purpose, though kill(pid, 0) still finds it.
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
  }
  try { // no /proc here
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM"; // exists, not ours to signal
  }
}

/** Remove what interrupted runs of this host left beside `out`; returns the paths removed. */
export async function removeLeftovers(out: string): Promise<string[]> {
  const dir = dirname(out);
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return removed; // no folder yet, or unreadable: the run itself will say so
  }
  for (const e of entries) {
    const owner = leftoverOwner(out, e.name);
    if (!owner || owner.host !== thisHost() || owner.pid === Deno.pid || alive(owner.pid)) {
      continue;
    }
    const path = join(dir, e.name);
    await Deno.remove(path, { recursive: true }).then(
      () => removed.push(path),
      () => {}, // another run got there first, or we may not: leave it
    );
  }
  return removed;
}
