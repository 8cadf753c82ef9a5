// The admin's topology file: which switch each PC is on, for rooms whose switches do not send
// LLDP (or where the PCs cannot hear it). Pure: text in, a lookup out.
//
//   # switch   PCs: a MAC, an IPv4 address, a CIDR range or a first-last range
//   front      10.0.0.0/26
//   back       10.0.0.64-10.0.0.127
//   back       52:54:00:12:34:56
//
// One rule a line; `#` starts a comment. The first rule that matches a PC wins, MACs before
// addresses (a MAC names one PC, a range many). A PC no rule matches is on an unknown switch.

import { normalizeMac } from "../../netboot/mod.ts";

export interface Topology {
  /** The switch of a PC, or undefined when no rule names it. */
  switchOf(pc: { mac?: string; address?: string }): string | undefined;
  /** Every switch the file names, in file order. */
  switches: string[];
}

const NAME = /^[A-Za-z0-9._:-]{1,64}$/;

function ipv4(text: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

interface Range {
  first: number;
  last: number;
  name: string;
}

/** Parse a topology file; `file` names it in errors. Throws SyntaxError with the line. */
export function parseTopology(text: string, file: string): Topology {
  const macs = new Map<string, string>();
  const ranges: Range[] = [];
  const switches: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) return;
    const where = `"${file}" line ${i + 1}`;
    const fields = line.split(/\s+/);
    if (fields.length !== 2) {
      throw new SyntaxError(`Invalid topology rule "${line}" in ${where}: expected "SWITCH PCS"`);
    }
    const [name, what] = fields;
    if (!NAME.test(name)) {
      throw new SyntaxError(
        `Invalid switch name "${name}" in ${where}: use letters, digits and . _ : - (1..64)`,
      );
    }
    if (!switches.includes(name)) switches.push(name);
    const mac = normalizeMac(what);
    if (mac) {
      if (!macs.has(mac)) macs.set(mac, name);
      return;
    }
    let first: number | null = null;
    let last: number | null = null;
    const cidr = /^([\d.]+)\/(\d{1,2})$/.exec(what);
    const dash = /^([\d.]+)-([\d.]+)$/.exec(what);
    if (cidr && Number(cidr[2]) <= 32) {
      const base = ipv4(cidr[1]);
      const bits = Number(cidr[2]);
      if (base !== null) {
        const size = 2 ** (32 - bits);
        first = base - (base % size);
        last = first + size - 1;
      }
    } else if (dash) {
      first = ipv4(dash[1]);
      last = ipv4(dash[2]);
    } else first = last = ipv4(what);
    if (first === null || last === null || last < first) {
      throw new SyntaxError(
        `Invalid PCs "${what}" in ${where}: expected a MAC, an IPv4 address, A.B.C.D/N or A-B`,
      );
    }
    ranges.push({ first, last, name });
  });
  return {
    switches,
    switchOf(pc) {
      const mac = pc.mac === undefined ? null : normalizeMac(pc.mac);
      if (mac && macs.has(mac)) return macs.get(mac);
      const address = pc.address?.replace(/^::ffff:/, "");
      const ip = address === undefined ? null : ipv4(address);
      if (ip === null) return undefined;
      return ranges.find((r) => r.first <= ip && ip <= r.last)?.name;
    },
  };
}
