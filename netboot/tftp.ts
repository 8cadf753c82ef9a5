// TFTP packets (RFC 1350, options RFC 2347: blksize RFC 2348, tsize RFC 2349), read side only:
// the master answers reads, never writes. Pure: bytes in, values out, and back.
//
// Why a TFTP side at all: under Secure Boot the PC runs Debian's signed GRUB, which loads no
// module that is not built in, and its network image has TFTP but no HTTP. So the master
// answers GRUB's reads of "boot/..." with its own /boot/... routes (netboot/tftp_server.ts).

export const OP = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** TFTP error codes (RFC 1350) the server sends. */
export const ERR = { NOT_DEFINED: 0, NOT_FOUND: 1, ACCESS: 2, ILLEGAL: 4, OPTION: 8 } as const;

export const DEFAULT_BLKSIZE = 512;
/** The largest block that fits one Ethernet frame (1500 - IP 20 - UDP 8 - TFTP 4). */
export const MAX_BLKSIZE = 1468;

export interface TftpRequest {
  kind: "read" | "write";
  filename: string;
  mode: string;
  /** Options by lower-case name ("blksize", "tsize", ...), as sent. */
  options: Map<string, string>;
}

const dec = new TextDecoder();
const enc = new TextEncoder();

/** An RRQ or WRQ: opcode, then NUL-terminated filename, mode, and option name/value pairs. */
export function parseRequest(packet: Uint8Array): TftpRequest {
  if (packet.length < 4) throw new SyntaxError(`Bad TFTP request: ${packet.length} bytes`);
  const op = (packet[0] << 8) | packet[1];
  if (op !== OP.RRQ && op !== OP.WRQ) throw new SyntaxError(`Bad TFTP request: opcode ${op}`);
  const fields: string[] = [];
  let at = 2;
  while (at < packet.length) {
    const end = packet.indexOf(0, at);
    if (end < 0) throw new SyntaxError("Bad TFTP request: a field is not NUL-terminated");
    fields.push(dec.decode(packet.subarray(at, end)));
    at = end + 1;
  }
  const [filename, mode, ...rest] = fields;
  if (!filename || mode === undefined) {
    throw new SyntaxError("Bad TFTP request: no filename or mode");
  }
  const options = new Map<string, string>();
  for (let i = 0; i + 1 < rest.length; i += 2) options.set(rest[i].toLowerCase(), rest[i + 1]);
  return { kind: op === OP.RRQ ? "read" : "write", filename, mode: mode.toLowerCase(), options };
}

/** Encode a request (tests and clients). */
export function encodeRequest(filename: string, options: Record<string, string> = {}): Uint8Array {
  const parts = [filename, "octet", ...Object.entries(options).flat()];
  return concat([u16(OP.RRQ), ...parts.flatMap((p) => [enc.encode(p), new Uint8Array([0])])]);
}

function u16(n: number): Uint8Array {
  return new Uint8Array([(n >> 8) & 0xff, n & 0xff]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** DATA: block numbers run 1, 2, ... and wrap from 65535 to 0 on long files. */
export function encodeData(block: number, data: Uint8Array): Uint8Array {
  return concat([u16(OP.DATA), u16(block & 0xffff), data]);
}

export function encodeAck(block: number): Uint8Array {
  return concat([u16(OP.ACK), u16(block & 0xffff)]);
}

export function encodeError(code: number, message: string): Uint8Array {
  return concat([u16(OP.ERROR), u16(code), enc.encode(message), new Uint8Array([0])]);
}

export function encodeOack(options: Map<string, string>): Uint8Array {
  const parts = [...options].flat();
  return concat([u16(OP.OACK), ...parts.flatMap((p) => [enc.encode(p), new Uint8Array([0])])]);
}

/** What a client sent back during a transfer. */
export type Reply =
  | { kind: "ack"; block: number }
  | { kind: "error"; code: number; message: string }
  | { kind: "other"; op: number };

export function parseReply(packet: Uint8Array): Reply {
  const op = packet.length >= 2 ? (packet[0] << 8) | packet[1] : -1;
  if (op === OP.ACK && packet.length >= 4) {
    return { kind: "ack", block: (packet[2] << 8) | packet[3] };
  }
  if (op === OP.ERROR && packet.length >= 4) {
    const end = packet.indexOf(0, 4);
    return {
      kind: "error",
      code: (packet[2] << 8) | packet[3],
      message: dec.decode(packet.subarray(4, end < 0 ? packet.length : end)),
    };
  }
  return { kind: "other", op };
}

/**
 * The options the server takes up: blksize (8..65464, capped at MAX_BLKSIZE) and tsize (the
 * size, when known). Unknown options are left out of the OACK, as RFC 2347 says.
 */
export function negotiate(
  asked: Map<string, string>,
  size: number | undefined,
): { blksize: number; oack: Map<string, string> | null } {
  const oack = new Map<string, string>();
  let blksize = DEFAULT_BLKSIZE;
  const b = Number(asked.get("blksize"));
  if (asked.has("blksize") && Number.isInteger(b) && b >= 8) {
    blksize = Math.min(b, MAX_BLKSIZE);
    oack.set("blksize", String(blksize));
  }
  if (asked.has("tsize") && size !== undefined) oack.set("tsize", String(size));
  return { blksize, oack: oack.size ? oack : null };
}

/**
 * The master route a TFTP filename reads: "boot/grub/aa:bb:.." or "/boot/vmlinuz" ->
 * "/boot/grub/aa:bb:..", "/boot/vmlinuz". Only /boot/ (nothing else of the master is for
 * TFTP); null for anything else, or a path that climbs ("..").
 */
export function routeOf(filename: string): string | null {
  const path = "/" + filename.replace(/^\/+/, "");
  if (!path.startsWith("/boot/") || path.split("/").includes("..")) return null;
  if (/[\s?#%\\]/.test(path)) return null;
  return path;
}
