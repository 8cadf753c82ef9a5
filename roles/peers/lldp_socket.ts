// LLDP frames straight from the kernel, without tcpdump: Deno has no raw sockets, but its FFI
// reaches libc (already loaded: the deno executable links it, so the initramfs has it), and an
// AF_PACKET socket bound to one interface and the LLDP ethertype receives each frame whole
// (Ethernet header included), as tcpdump's capture does. Needs root (CAP_NET_RAW) and -A.
//
// The switch sends to the LLDP multicast address 01:80:c2:00:00:0e: the socket joins it
// (PACKET_ADD_MEMBERSHIP), so a NIC that filters multicast passes it up, without promiscuous
// mode. recv is called with MSG_DONTWAIT every 100 ms (the socket queues what comes meanwhile),
// so the event loop stays free, and errno is read on the thread that made the call (an FFI
// call on its own thread would leave errno there).
import { LLDP_ETHERTYPE } from "./lldp.ts";

const AF_PACKET = 17;
const SOCK_RAW = 3;
const SOL_PACKET = 263;
const PACKET_ADD_MEMBERSHIP = 1;
const PACKET_MR_MULTICAST = 0;
const EAGAIN = 11;
const MSG_DONTWAIT = 0x40;
const POLL_MS = 100;
export const LLDP_MULTICAST = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | undefined;
function open(): Libc {
  libc ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  return libc;
}

function errno(c: Libc): number {
  const p = c.__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

function fail(c: Libc, what: string, iface: string): never {
  const code = errno(c);
  const text = c.strerror(code);
  const why = text ? new Deno.UnsafePointerView(text).getCString() : `errno ${code}`;
  throw new Error(`Cannot ${what} for LLDP on "${iface}": ${why}`);
}

/** A raw socket on `iface` for the LLDP ethertype, joined to the LLDP multicast address. */
export class LldpSocket {
  #c: Libc;
  #fd: number;
  readonly iface: string;

  constructor(iface: string) {
    this.iface = iface;
    const c = this.#c = open();
    const index = c.if_nametoindex(new TextEncoder().encode(`${iface}\0`));
    if (index === 0) fail(c, "find the interface", iface);
    // htons: the protocol goes in network byte order.
    const proto = ((LLDP_ETHERTYPE & 0xff) << 8) | (LLDP_ETHERTYPE >> 8);
    const fd = c.socket(AF_PACKET, SOCK_RAW, proto);
    if (fd < 0) fail(c, "open a packet socket", iface);
    this.#fd = fd;
    try {
      // struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8]
      const ll = new DataView(new ArrayBuffer(20));
      ll.setUint16(0, AF_PACKET, true);
      ll.setUint16(2, LLDP_ETHERTYPE, false);
      ll.setInt32(4, index, true);
      if (c.bind(fd, new Uint8Array(ll.buffer), 20) !== 0) fail(c, "bind a packet socket", iface);
      // struct packet_mreq: ifindex, type, alen, address[8]
      const mreq = new DataView(new ArrayBuffer(16));
      mreq.setInt32(0, index, true);
      mreq.setUint16(4, PACKET_MR_MULTICAST, true);
      mreq.setUint16(6, 6, true);
      new Uint8Array(mreq.buffer).set(LLDP_MULTICAST, 8);
      const m = new Uint8Array(mreq.buffer);
      if (c.setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, m, 16) !== 0) {
        fail(c, "join the LLDP multicast address", iface);
      }
    } catch (err) {
      c.close(fd);
      throw err;
    }
  }

  /** The next LLDP frame within `seconds` (whole, Ethernet header first), or null. */
  async receive(seconds: number): Promise<Uint8Array | null> {
    const end = performance.now() + seconds * 1000;
    const buf = new Uint8Array(9216); // the largest jumbo frame
    for (;;) {
      const n = Number(this.#c.recv(this.#fd, buf, BigInt(buf.length), MSG_DONTWAIT));
      if (n > 0) return buf.slice(0, n);
      if (n < 0 && errno(this.#c) !== EAGAIN) fail(this.#c, "receive", this.iface);
      if (performance.now() >= end) return null;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** Send one whole frame (tests, and a PC that announces itself). */
  send(frame: Uint8Array): void {
    if (Number(this.#c.send(this.#fd, frame, BigInt(frame.length), 0)) !== frame.length) {
      fail(this.#c, "send", this.iface);
    }
  }

  close() {
    this.#c.close(this.#fd);
  }
}
