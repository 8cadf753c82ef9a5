// Finishing a PC's disk once it is imaged, verified and no longer serves: the GPT backup moved
// to the disk's end (a disk bigger than the image), then the group's finishing step, if any: a
// shell script the master serves for this PC (GET /boot/finish?mac=), run with the PC's MAC,
// address, disk and group settings in its environment. Its output goes to the console as it
// comes and (its tail) to the master, which shows it on the dashboard and keeps it in the
// history; a step that fails (or runs too long) marks the PC failed, not done.
import { moveGptBackup } from "../../imagetools/fs/mod.ts";
import type { Logger } from "../../imagetools/kit/mod.ts";
import type { FinishStep } from "../../netboot/mod.ts";
import type { TargetDisk } from "../data/mod.ts";

export interface FinishContext {
  masterUrl: string;
  mac?: string;
  /** The address the master sees for this PC. */
  address?: string;
  disk: string;
  imageId: string;
  log: Logger;
  /** Seconds a step may run (default 600). */
  timeout?: number;
  /** Where the step's output goes as it comes (default: stderr, the PC's console). */
  echo?: (text: string) => void;
}

export interface FinishOutcome {
  ok: boolean;
  /** "gpt" or the step's name. */
  step: string;
  /** What happened, for the dashboard and the history (the output's tail for a step). */
  detail: string;
}

const TAIL = 1000;

/** The finishing step the master serves for this PC; undefined when there is none. */
export async function fetchFinishStep(
  masterUrl: string,
  mac: string,
): Promise<FinishStep | undefined> {
  const url = new URL(`/boot/finish?mac=${mac.replaceAll(":", "-")}`, masterUrl).href;
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  // 404: a master without --netboot serves no steps.
  if (res.status === 204 || res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (!res.ok) {
    throw new Error(`Cannot fetch the finishing step from "${url}": HTTP ${res.status}`);
  }
  const step = await res.json() as FinishStep;
  if (typeof step.script !== "string" || typeof step.name !== "string") {
    throw new Error(`Cannot use the finishing step from "${url}": no script in the answer`);
  }
  return step;
}

/** Run one step's script with `sh`; never throws for the script's own failure. */
export async function runFinishStep(step: FinishStep, c: FinishContext): Promise<FinishOutcome> {
  const echo = c.echo ?? ((t: string) => Deno.stderr.writeSync(new TextEncoder().encode(t)));
  const dir = await Deno.makeTempDir({ prefix: "cascade-finish-" });
  const file = `${dir}/${step.name.replace(/[^A-Za-z0-9._-]/g, "_") || "finish.sh"}`;
  await Deno.writeTextFile(file, step.script, { mode: 0o700 });
  const env: Record<string, string> = {
    ...step.env,
    CASCADE_MAC: c.mac ?? "",
    CASCADE_ADDRESS: c.address ?? "",
    CASCADE_DISK: c.disk,
    CASCADE_IMAGE: c.imageId,
    CASCADE_MASTER: c.masterUrl,
    CASCADE_GROUP: step.group,
  };
  c.log("finish-step", { step: step.name, group: step.group, disk: c.disk });
  const t0 = performance.now();
  let tail = "";
  const keep = (text: string) => {
    echo(text);
    tail = (tail + text).slice(-TAIL);
  };
  try {
    const child = new Deno.Command("sh", {
      args: [file],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timeout = c.timeout ?? 600;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        child.kill("SIGKILL");
      } catch { /* gone already */ }
    }, timeout * 1000);
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const text of s.pipeThrough(new TextDecoderStream())) keep(text);
    };
    const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
    const status = await child.status;
    clearTimeout(timer);
    // A step's own children may hold its output open: wait for it a moment only.
    await Promise.race([pumps, new Promise((r) => setTimeout(r, timedOut ? 200 : 2000))]);
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    const ok = status.success && !timedOut;
    const how = timedOut
      ? `ran over ${timeout} s and was stopped`
      : ok
      ? `succeeded in ${seconds} s`
      : `failed (exit code ${status.code}) after ${seconds} s`;
    c.log("finish-step-done", { step: step.name, ok, code: status.code, seconds });
    return {
      ok,
      step: step.name,
      detail: `Finishing step "${step.name}" ${how}${tail.trim() ? `: ${tail.trim()}` : ""}`,
    };
  } catch (err) {
    return {
      ok: false,
      step: step.name,
      detail: `Cannot run finishing step "${step.name}": ${(err as Error).message}`,
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Finish a verified disk: the GPT backup to the disk's end, then the master's step for this PC.
 * Returns each part's outcome in order; the first failure stops the rest.
 */
export async function finishDisk(target: TargetDisk, c: FinishContext): Promise<FinishOutcome[]> {
  const out: FinishOutcome[] = [];
  try {
    const gpt = await moveGptBackup(target, c.disk);
    c.log("gpt", { disk: c.disk, moved: gpt.moved, message: gpt.message });
    out.push({ ok: true, step: "gpt", detail: gpt.message });
  } catch (err) {
    out.push({ ok: false, step: "gpt", detail: (err as Error).message });
    return out;
  }
  if (!c.mac) return out;
  let step: FinishStep | undefined;
  try {
    step = await fetchFinishStep(c.masterUrl, c.mac);
  } catch (err) {
    out.push({ ok: false, step: "fetch", detail: (err as Error).message });
    return out;
  }
  if (step) out.push(await runFinishStep(step, c));
  return out;
}
