// What other folders may import from roles/peers.
export * from "./cli.ts";
export * from "./lldp.ts";
