// Listen on an interface for one LLDP frame (the switch and port this PC's cable ends in).
// Deno has no raw sockets, so tcpdump captures the frame (pcap on stdout) and lldp.ts reads it.
import type { Logger } from "../../imagetools/kit/mod.ts";
import { type LldpNeighbor, parseLldpFrame, pcapFrames } from "./lldp.ts";

/** The first LLDP neighbour heard on `iface` within `seconds`, or null (none, no tcpdump). */
export async function listenLldp(
  iface: string,
  seconds: number,
  log: Logger,
): Promise<LldpNeighbor | null> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("tcpdump", {
      args: ["-i", iface, "-c", "1", "-U", "-w", "-", "ether", "proto", "0x88cc"],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).spawn();
  } catch (err) {
    log("lldp-unavailable", { iface, error: (err as Error).message });
    return null;
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGTERM");
    } catch { /* exited */ }
  }, seconds * 1000);
  try {
    const out = await child.output();
    const frame = pcapFrames(out.stdout)[0];
    if (!frame) {
      log("lldp-none", { iface, seconds });
      return null;
    }
    const n = parseLldpFrame(frame);
    log("lldp", { iface, chassis: n.chassis.value, port: n.port.value, system: n.systemName });
    return n;
  } catch (err) {
    log("lldp-unreadable", { iface, error: (err as Error).message });
    return null;
  } finally {
    clearTimeout(timer);
  }
}
