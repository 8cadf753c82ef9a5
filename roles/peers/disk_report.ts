// Telling the master that this PC's disk failed before the PC's session began (opening the disk,
// the zero fill, the resume scan): one short control session, hello then "failed" (reason
// "disk", no server), then hang up. The dashboard and the history then show the failure, not
// only the PC's console, and the master records one failure per try, as for a failed write
// during a transfer.
import type { Logger } from "../../imagetools/kit/mod.ts";
import { type HelloMessage, PROTOCOL_VERSION } from "../protocol/mod.ts";
import { ControlSession } from "./control_session.ts";

export interface DiskReport {
  masterUrl: string;
  name: string;
  mac?: string;
  imageId: string;
  capacity: number;
  held: number;
  disk: string;
  diskReason: string;
  /** The disk, byte offset and OS error, as the console shows them. */
  detail: string;
  log: Logger;
  /** Give up on the master after this long (default 10 s): the PC's retries must go on. */
  timeoutMs?: number;
}

/** Resolves true once the master welcomed the hello and the failure went out, false if not. */
export function reportDiskFailure(r: DiskReport): Promise<boolean> {
  const hello: HelloMessage = {
    type: "hello",
    version: PROTOCOL_VERSION,
    role: "client",
    name: r.name,
    ...(r.mac ? { mac: r.mac } : {}),
    imageId: r.imageId,
    capacity: r.capacity,
    held: r.held,
    complete: false,
    disk: r.disk,
    diskReason: r.diskReason.slice(0, 2048),
  };
  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined = undefined;
    let over = false;
    const done = (sent: boolean) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      // Let "failed" leave before the hang-up (the master frees what it assigned at the hang-up).
      setTimeout(() => {
        session.close();
        resolve(sent);
      }, sent ? 100 : 0);
    };
    const session = new ControlSession({
      masterUrl: r.masterUrl,
      hello: () => hello,
      onWelcome: () => {
        const sent = session.send({
          type: "failed",
          reason: "disk",
          detail: r.detail.slice(0, 1024),
        });
        done(sent);
      },
      onMessage: () => {}, // an assignment may come first: this session only reports
      onFatal: (message) => {
        r.log("disk-report-refused", { error: message });
        done(false);
      },
      log: r.log,
    });
    timer = setTimeout(() => {
      r.log("disk-report-failed", {
        error: `no answer from the master in ${r.timeoutMs ?? 10_000} ms`,
      });
      done(false);
    }, r.timeoutMs ?? 10_000);
    session.start();
  });
}
