// Listen on an interface for one LLDP frame (the switch and port this PC's cable ends in): from
// a packet socket through libc (lldp_socket.ts: nothing to install, works in the initramfs);
// where that cannot be opened, tcpdump captures the frame (pcap on stdout). lldp.ts reads it.
import type { Logger } from "../../imagetools/kit/mod.ts";
import { type LldpNeighbor, parseLldpFrame, pcapFrames } from "./lldp.ts";
import { LldpSocket } from "./lldp_socket.ts";

/** The first LLDP neighbour heard on `iface` within `seconds`, or null (none heard). */
export async function listenLldp(
  iface: string,
  seconds: number,
  log: Logger,
): Promise<LldpNeighbor | null> {
  let socket: LldpSocket;
  try {
    socket = new LldpSocket(iface);
  } catch (err) {
    log("lldp-socket-unavailable", { iface, error: (err as Error).message });
    return await listenTcpdump(iface, seconds, log);
  }
  try {
    const frame = await socket.receive(seconds);
    return heard(iface, seconds, frame, log);
  } catch (err) {
    log("lldp-unreadable", { iface, error: (err as Error).message });
    return null;
  } finally {
    socket.close();
  }
}

function heard(iface: string, seconds: number, frame: Uint8Array | null | undefined, log: Logger) {
  if (!frame) {
    log("lldp-none", { iface, seconds });
    return null;
  }
  const n = parseLldpFrame(frame);
  log("lldp", { iface, chassis: n.chassis.value, port: n.port.value, system: n.systemName });
  return n;
}

async function listenTcpdump(
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
    return heard(iface, seconds, pcapFrames(out.stdout)[0], log);
  } catch (err) {
    log("lldp-unreadable", { iface, error: (err as Error).message });
    return null;
  } finally {
    clearTimeout(timer);
  }
}
