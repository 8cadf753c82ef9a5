// MD5 workers kept warm for a process that receives: a worker takes 25-350 ms to start (more
// the more PCs start theirs at once on a loaded machine), and a transfer that starts one when
// it is assigned makes its first chunk, and so every PC below it in a chain, wait that long
// (bench:lab's phases: "assigned -> first chunk"). A client process keeps its workers from one
// transfer to the next (a re-attached relay resumes at once) and starts the first before its
// hello, while it waits to be assigned. Only a process that says so (keepMd5Warm: the client
// CLI, which ends with Deno.exit) keeps them; tests and libraries close each with its transfer.
import { Md5Hasher } from "../../imagetools/hashing/mod.ts";

let keep = false;
const idle: Md5Hasher[] = [];

/** Keep MD5 workers for the rest of this process, and start `threads` of them now. */
export function keepMd5Warm(threads: number): void {
  keep = true;
  if (!idle.some((h) => h.threads === threads)) idle.push(new Md5Hasher(threads));
}

/** A hasher of `threads` workers: a warm one if this process keeps them, else a new one. */
export function takeMd5Hasher(threads: number): Md5Hasher {
  const i = idle.findIndex((h) => h.threads === threads);
  return i >= 0 ? idle.splice(i, 1)[0] : new Md5Hasher(threads);
}

/** A transfer is done with its hasher: kept for the next one, or closed. */
export function giveMd5Hasher(h: Md5Hasher): void {
  if (keep) idle.push(h);
  else h.close();
}
