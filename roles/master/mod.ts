// What other folders may import from roles/master.
export * from "./cli.ts";
export * from "./core.ts";
export * from "./history.ts";
export * from "./history_record.ts";
export * from "./history_cli.ts";
export * from "./live_status.ts";
export * from "./peer_record.ts";
export * from "./scheduler.ts";
export * from "./status.ts";
export * from "./topology.ts";
export * from "./feed.ts";
export * from "./prover.ts";
