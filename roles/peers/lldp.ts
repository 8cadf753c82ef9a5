// LLDP (IEEE 802.1AB) frames, parsed: which switch and which port a PC's cable ends in. Pure:
// bytes in, a record out. Most managed switches send one every 30 s on every port; a PC that
// hears one tells the master in its hello, and the scheduler keeps PCs of one switch together.
//
// A frame: Ethernet (destination 01:80:c2:00:00:0e, optionally one 802.1Q tag), EtherType
// 0x88cc, then TLVs: a 16-bit header (7 bits type, 9 bits length) and the value. Chassis ID
// (1), Port ID (2) and TTL (3) come first and are required; End (0) closes the frame. IDs carry
// a subtype byte saying how to read them (4 = MAC address, 5 = interface name, 7 = local...).

export const LLDP_ETHERTYPE = 0x88cc;

export interface LldpId {
  /** The ID subtype (chassis: 4 MAC, 5 network address, 6 interface name, 7 local; port: 3 MAC,
   * 5 interface name, 7 local, ...). */
  subtype: number;
  /** The ID as text: a MAC as aa:bb:..., an IPv4 address dotted, names as they are. */
  value: string;
}

export interface LldpNeighbor {
  /** The sender's MAC (the switch port's own address). */
  source: string;
  chassis: LldpId;
  port: LldpId;
  /** Seconds the information is valid. */
  ttl: number;
  systemName?: string;
  systemDescription?: string;
  portDescription?: string;
}

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
const text = (b: Uint8Array) => new TextDecoder("utf-8", { fatal: false }).decode(b);

function readId(tlv: Uint8Array, what: string, macSubtype: number): LldpId {
  if (tlv.length < 2) {
    throw new SyntaxError(`Invalid LLDP frame: ${what} TLV of ${tlv.length} bytes (needs >= 2)`);
  }
  const subtype = tlv[0];
  const body = tlv.subarray(1);
  let value: string;
  if (subtype === macSubtype && body.length === 6) value = hex(body);
  else if (subtype === 5 && what === "chassis ID" && body[0] === 1 && body.length === 5) {
    value = [...body.subarray(1)].join("."); // network address, IPv4
  } else if (subtype === 4 && what === "port ID" && body[0] === 1 && body.length === 5) {
    value = [...body.subarray(1)].join(".");
  } else value = text(body);
  return { subtype, value };
}

/** Parse one Ethernet frame carrying LLDP; throws SyntaxError naming what is wrong. */
export function parseLldpFrame(frame: Uint8Array): LldpNeighbor {
  if (frame.length < 14) {
    throw new SyntaxError(`Invalid LLDP frame: ${frame.length} bytes is shorter than Ethernet`);
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let off = 12;
  let type = view.getUint16(off);
  if (type === 0x8100) {
    off += 4;
    type = frame.length >= off + 2 ? view.getUint16(off) : 0;
  }
  if (type !== LLDP_ETHERTYPE) {
    throw new SyntaxError(
      `Invalid LLDP frame: EtherType 0x${type.toString(16).padStart(4, "0")}, expected 0x88cc`,
    );
  }
  off += 2;
  const out: Partial<LldpNeighbor> = { source: hex(frame.subarray(6, 12)) };
  for (let n = 0;; n++) {
    if (off + 2 > frame.length) throw new SyntaxError("Invalid LLDP frame: no End TLV");
    const head = view.getUint16(off);
    const t = head >> 9;
    const len = head & 0x1ff;
    off += 2;
    if (off + len > frame.length) {
      throw new SyntaxError(`Invalid LLDP frame: TLV type ${t} of ${len} bytes runs past the end`);
    }
    const value = frame.subarray(off, off + len);
    off += len;
    const need = ["chassis ID", "port ID", "TTL"][n];
    if (need && t !== n + 1) {
      throw new SyntaxError(`Invalid LLDP frame: TLV ${n + 1} is type ${t}, expected ${need}`);
    }
    if (t === 0) break;
    if (t === 1) out.chassis = readId(value, "chassis ID", 4);
    else if (t === 2) out.port = readId(value, "port ID", 3);
    else if (t === 3) {
      if (len !== 2) throw new SyntaxError(`Invalid LLDP frame: TTL TLV of ${len} bytes`);
      out.ttl = view.getUint16(off - 2);
    } else if (t === 4) out.portDescription = text(value);
    else if (t === 5) out.systemName = text(value);
    else if (t === 6) out.systemDescription = text(value);
  }
  return out as LldpNeighbor;
}

/** The name the master groups PCs by: the switch's system name, else its chassis ID. */
export function switchName(n: LldpNeighbor): string {
  return n.systemName || n.chassis.value;
}

/** The frames of a classic pcap file (tcpdump -w; either byte order, microsecond or nanosecond
 * stamps), as slices of `bytes`. Only Ethernet captures (link type 1). */
export function pcapFrames(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length < 24) throw new SyntaxError(`Invalid pcap: ${bytes.length} bytes of header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  const little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (
    !little && view.getUint32(0, false) !== 0xa1b2c3d4 && view.getUint32(0, false) !== 0xa1b23c4d
  ) {
    throw new SyntaxError(`Invalid pcap: magic 0x${magic.toString(16)}`);
  }
  const link = view.getUint32(20, little);
  if (link !== 1) throw new SyntaxError(`Invalid pcap: link type ${link}, expected 1 (Ethernet)`);
  const frames: Uint8Array[] = [];
  for (let off = 24; off + 16 <= bytes.length;) {
    const incl = view.getUint32(off + 8, little);
    off += 16;
    if (off + incl > bytes.length) break; // a capture cut short: the whole frames before it
    frames.push(bytes.subarray(off, off + incl));
    off += incl;
  }
  return frames;
}
