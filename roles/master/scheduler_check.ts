// The scheduler's event check: why an event is inconsistent with the queues and batches (a
// duplicate join, an unknown id, a bad number), or null. Pure: it reads the state, changes none.
import type {
  Batch,
  ClientEntry,
  SchedulerEvent,
  ServerEntry,
  ServerKind,
} from "./scheduler_types.ts";

const KINDS: readonly ServerKind[] = ["fake", "server", "relay"];

/** What the check reads of the Scheduler's state. */
export interface CheckState {
  servers: readonly ServerEntry[];
  clients: readonly ClientEntry[];
  batches: ReadonlyMap<string, Batch>;
  upstream: ReadonlyMap<string, string>;
  paused: boolean;
  /** Servers that clients reported out of the queue (scheduler_eject.ts). */
  ejected: (id: string) => boolean;
}

/** Why the event is inconsistent with the current state, or null when it may be applied. */
export function checkEvent(e: SchedulerEvent, s: CheckState): string | null {
  if (typeof e.at !== "number" || !Number.isFinite(e.at)) {
    return `Invalid time "${(e as { at: unknown }).at}": must be a finite number of seconds`;
  }
  const id = (e as { id?: unknown }).id;
  if ("id" in e && (typeof id !== "string" || id === "")) {
    return `Invalid peer id "${id}": must be a non-empty string`;
  }
  switch (e.type) {
    case "server-ready":
      if (!Number.isInteger(e.capacity) || e.capacity < 1) {
        return `Invalid capacity "${e.capacity}" for server "${e.id}": must be a whole number >= 1`;
      }
      if (!KINDS.includes(e.kind)) return `Invalid server kind "${e.kind}" for "${e.id}"`;
      if (e.rate !== undefined && !(e.rate > 0 && Number.isFinite(e.rate))) {
        return `Invalid port rate "${e.rate}" for server "${e.id}": must be bytes/s > 0`;
      }
      if (e.switch !== undefined && typeof e.switch !== "string") {
        return `Invalid switch "${e.switch}" for "${e.id}": must be a string`;
      }
      if (s.servers.some((s) => s.id === e.id)) {
        return `Server "${e.id}" is already in the server queue`;
      }
      if (s.batches.has(e.id)) return `Server "${e.id}" is already serving a batch`;
      if (s.ejected(e.id)) {
        return `Server "${e.id}" left the queue: several clients reported it failed`;
      }
      return null;
    case "client-ready":
      if (e.probe !== undefined && !(e.probe > 0 && Number.isFinite(e.probe))) {
        return `Invalid probe rate "${e.probe}" for client "${e.id}": must be bytes/s > 0`;
      }
      if (e.switch !== undefined && typeof e.switch !== "string") {
        return `Invalid switch "${e.switch}" for "${e.id}": must be a string`;
      }
      if (s.clients.some((c) => c.id === e.id)) {
        return `Client "${e.id}" is already in the client queue`;
      }
      if (s.upstream.has(e.id)) {
        return `Client "${e.id}" is already receiving from "${s.upstream.get(e.id)}"`;
      }
      return null;
    case "client-received":
      return s.upstream.has(e.id) || s.clients.some((c) => c.id === e.id)
        ? null
        : `Client "${e.id}" is in no batch and not queued`;
    case "client-failed":
      return s.upstream.has(e.id) ? null : `Client "${e.id}" is not in any batch`;
    case "progress":
      if (typeof e.bytes !== "number" || !(e.bytes >= 0) || !Number.isFinite(e.bytes)) {
        return `Invalid byte count "${e.bytes}" from "${e.id}": must be a number >= 0`;
      }
      return s.upstream.has(e.id) ? null : `Client "${e.id}" is not receiving`;
    case "leave":
      return s.servers.some((s) => s.id === e.id) || s.batches.has(e.id) ||
          s.clients.some((c) => c.id === e.id) || s.upstream.has(e.id)
        ? null
        : `Peer "${e.id}" is in no queue and no batch`;
    case "pause":
      return s.paused ? "Already paused" : null;
    case "resume":
      return s.paused ? null : "Not paused";
    case "pace":
      if (!(e.reportMs > 0 && Number.isFinite(e.reportMs))) {
        return `Invalid report interval "${e.reportMs}": must be milliseconds > 0`;
      }
      return null;
    case "tick":
      return null;
    default:
      return `Unknown event type "${(e as { type: unknown }).type}"`;
  }
}
