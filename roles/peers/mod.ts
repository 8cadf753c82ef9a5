// What other folders may import from roles/peers.
export * from "./cli.ts";
export * from "./lldp.ts";
export { LldpSocket } from "./lldp_socket.ts";
export { listenLldp } from "./lldp_listen.ts";
export * from "./client.ts";
export * from "./finish_step.ts";
export * from "./target_choice.ts";
export { probeMaster } from "./probe.ts";
