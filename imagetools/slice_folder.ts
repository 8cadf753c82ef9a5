// The slices folder's safe replacement (slice.ts builds it in a hidden sibling folder): what
// --force may replace, the fsyncs before the rename, and the swap that puts the new folder in
// place of an old one.
import { join } from "node:path";
import { MANIFEST_FILE, osReason } from "./image_io.ts";
import { leftoverPath } from "./leftovers.ts";

export async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw new Error(`Cannot inspect "${path}": ${osReason(err)}`, { cause: err });
  }
}

/** A folder --force may replace: an empty one or a slices folder (it holds manifest.json). */
export async function replaceable(path: string, info: Deno.FileInfo): Promise<boolean> {
  if (!info.isDirectory) return false;
  if (await lstatOrNull(join(path, MANIFEST_FILE))) return true;
  for await (const _ of Deno.readDir(path)) return false;
  return true;
}

export async function fsyncPath(path: string) {
  const f = await Deno.open(path, { read: true });
  try {
    await f.sync();
  } finally {
    f.close();
  }
}

/** Put the finished folder in place; an old one is moved aside first and removed after. */
export async function swapIn(tmp: string, out: string, replace: boolean) {
  if (!replace) {
    await Deno.rename(tmp, out);
    return;
  }
  const old = leftoverPath(out, "old");
  await Deno.rename(out, old);
  try {
    await Deno.rename(tmp, out);
  } catch (err) {
    await Deno.rename(old, out).catch(() => {});
    throw err;
  }
  await Deno.remove(old, { recursive: true });
}
