// Where a master can be reached: a wildcard bind (0.0.0.0) listens on every address of the
// machine, and the admin needs the LAN ones to point lab PCs and browsers at, not 127.0.0.1.

export interface InterfaceAddress {
  family: string;
  address: string;
}

/** http://host:port, an IPv6 host in brackets. */
export const httpUrl = (host: string, port: number) =>
  `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

/** The non-loopback IPv4 URLs of a master bound to `hostname`:`port`, in interface order
 * (only a wildcard bind has any: a specific address is the one URL already printed). */
export function lanUrls(
  hostname: string,
  port: number,
  interfaces: readonly InterfaceAddress[],
): string[] {
  if (hostname !== "0.0.0.0") return [];
  const seen = new Set<string>();
  for (const i of interfaces) {
    if (i.family === "IPv4" && !i.address.startsWith("127.")) seen.add(httpUrl(i.address, port));
  }
  return [...seen];
}

/** This machine's addresses, or none where the runtime may not list them. */
export function machineInterfaces(): InterfaceAddress[] {
  try {
    return Deno.networkInterfaces();
  } catch {
    return [];
  }
}
