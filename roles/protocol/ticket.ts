// Tickets: what lets a client pull chunks from the server the master sent it to, and nobody
// else. The master gives each serving peer a random key in its welcome (over its control
// session, never in a boot file) and each assigned client a ticket for that assignment:
// a nonce and an HMAC of it with the server's key and the client's address. The server checks
// the HMAC with its key and the address the request comes from, so it needs no list of tickets
// (no race with the "serve" message) and a ticket seen on the wire is no use from another host.
// Pure (node:crypto only).
import { createHmac, timingSafeEqual } from "node:crypto";

const HEX = /^[0-9a-f]+$/;

/** "::ffff:10.0.0.5" (an IPv4 client seen by a dual-stack socket) and "10.0.0.5" are one host. */
export function hostAddress(address: string): string {
  const a = address.toLowerCase().replace(/^\[|\]$/g, "");
  return a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
}

function mac(keyHex: string, nonce: string, address: string): Buffer {
  return createHmac("sha256", Buffer.from(keyHex, "hex"))
    .update(`cascade-ticket\0${nonce}\0${hostAddress(address)}`)
    .digest();
}

/** The ticket for a client at `address` to fetch from the server holding `keyHex`. */
export function issueTicket(keyHex: string, nonceHex: string, address: string): string {
  return `${nonceHex}.${mac(keyHex, nonceHex, address).toString("hex")}`;
}

/** Does `ticket` let a request from `address` fetch from the server holding `keyHex`? */
export function ticketValid(keyHex: string, ticket: string, address: string): boolean {
  const dot = ticket.indexOf(".");
  if (dot < 8 || ticket.length > 200) return false;
  const nonce = ticket.slice(0, dot);
  const tag = ticket.slice(dot + 1);
  if (!HEX.test(nonce) || !HEX.test(tag) || tag.length !== 64) return false;
  return timingSafeEqual(Buffer.from(tag, "hex"), mac(keyHex, nonce, address));
}
