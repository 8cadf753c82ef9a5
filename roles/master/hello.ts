// A hello taken apart from the sessions: the checks it must pass before anything about its
// session is looked at (server token, image, chunk count, draining), and the peer record it
// makes. Pure; the session-bound checks (MAC, boot request) stay in core.ts, which holds them.
import { createHash, timingSafeEqual } from "node:crypto";
import type { HelloMessage } from "../protocol/mod.ts";
import type { BootRecords } from "./boot_records.ts";
import type { MasterConfig } from "./core_config.ts";
import type { PeerRecord } from "./peer_record.ts";

/** Why the hello is refused on its own and the config's terms, or null when it may go on. */
export function helloRefusal(
  msg: HelloMessage,
  config: MasterConfig,
  draining: boolean,
  known: (name: string) => boolean,
): string | null {
  if (msg.role !== "client" && config.serverToken !== undefined) {
    if (msg.token === undefined) {
      return ("This master needs the server token (--server-token)");
    }
    if (!sameSecret(msg.token, config.serverToken)) {
      return ("Wrong server token");
    }
  }
  // A data address is the address the master sees plus the port the peer gives: only a server
  // that proved the server token may name a URL of its own (behind NAT, a proxy), so a client
  // cannot send other PCs to an arbitrary http: address.
  if (msg.url !== undefined && (msg.role === "client" || config.serverToken === undefined)) {
    return (`A ${msg.role} may not name its data URL ("url"): the master pairs the address it sees with its "port"`);
  }
  if (msg.imageId !== config.imageId) {
    return (`Peer holds image "${msg.imageId.slice(0, 12)}" but this master serves "${
      config.imageId.slice(0, 12)
    }"`);
  }
  if (msg.held > config.totalChunks) {
    return (`Invalid "hello": held ${msg.held} > ${config.totalChunks}`);
  }
  if (draining && msg.role === "client" && !known(msg.name)) {
    return ("This run is draining: the master admits no new clients");
  }
  return null;
}

/** The record a hello makes: what it says, and what a record left by the same PC carries over. */
export function helloRecord(
  msg: HelloMessage,
  total: number,
  f: {
    id: string;
    mac: string | undefined;
    address: string;
    url: string | undefined;
    complete: boolean;
    claimsComplete: boolean;
    previous: PeerRecord | undefined;
    sw: string | undefined;
    now: number;
  },
): PeerRecord {
  const { id, mac, address, url, complete, claimsComplete, previous, sw, now } = f;
  const peer: PeerRecord = {
    id,
    role: msg.role,
    name: msg.name,
    mac,
    address,
    url,
    capacity: msg.capacity,
    state: complete ? "serving" : claimsComplete ? "verifying" : "waiting",
    held: complete || claimsComplete ? total : msg.held,
    total,
    bytes: 0,
    rate: 0,
    servedBy: previous?.servedBy ?? [],
    serving: [],
    joinedAt: previous?.joinedAt ?? now,
    verified: previous?.verified ?? false,
    failures: previous?.failures ?? [],
    failureCount: previous?.failureCount ?? previous?.failures.length ?? 0,
    connected: true,
    ...(msg.disk ? { disk: msg.disk } : previous?.disk ? { disk: previous.disk } : {}),
    ...(msg.diskReason
      ? { diskReason: msg.diskReason }
      : previous?.diskReason
      ? { diskReason: previous.diskReason }
      : {}),
    ...(sw !== undefined ? { switch: sw } : {}),
    ...(msg.switchPort !== undefined ? { switchPort: msg.switchPort } : {}),
    ...(msg.probe !== undefined ? { probe: msg.probe } : {}),
  };
  if (previous?.doneAt !== undefined) peer.doneAt = previous.doneAt;
  if (previous?.assignedAt !== undefined) peer.assignedAt = previous.assignedAt;
  return peer;
}

/** The MAC a hello may take, or why it may not (the boot request binds a MAC to an address). */
export function helloMac(
  msg: HelloMessage,
  address: string,
  boots: BootRecords,
  holderOf: (mac: string) => PeerRecord | undefined,
): { error: string } | { mac: string | undefined; bound: boolean; holder: PeerRecord | undefined } {
  // A MAC is taken only from the boot request this session's address made: a hello that
  // names another PC's MAC (or one that booted elsewhere) is refused, so it cannot get that
  // PC recorded as imaged. A hello without a MAC takes the one that booted from its address.
  // A MAC named without a boot request (no netboot) is shown, but never recorded as imaged.
  const boot = msg.mac ? boots.byMac(msg.mac) : boots.byAddress(address);
  if (msg.mac && boot && boot.address !== address) {
    return {
      error: `MAC "${msg.mac}" booted from another address than this session's ("${address}")`,
    };
  }
  const bound = msg.role === "client" && boot !== undefined && boot.address === address;
  const mac = bound ? boot!.mac : msg.role === "client" ? msg.mac : undefined;
  const holder = mac ? holderOf(mac) : undefined;
  if (holder && (holder.macBound || !bound)) {
    return { error: `MAC "${mac}" belongs to connected peer "${holder.id}"` };
  }
  return { mac, bound, holder };
}

/** The peer's name, unless another PC holds it: a record left by a session that ended is
 * taken over (its verified state, its history) only from the same address and MAC. */
export function uniqueId(
  recordOf: (id: string) => PeerRecord | undefined,
  name: string,
  address: string,
  mac: string | undefined,
): string {
  const taken = (id: string) => {
    const p = recordOf(id);
    return p !== undefined && (p.connected || p.address !== address || p.mac !== mac);
  };
  if (!taken(name)) return name;
  for (let i = 2;; i++) if (!taken(`${name}-${i}`)) return `${name}-${i}`;
}

/** Compared as digests, so the comparison takes the same time whatever the lengths. */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
