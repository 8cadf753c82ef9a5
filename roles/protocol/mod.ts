// What other folders may import from roles/protocol.
export * from "./control.ts";
export * from "./control_parse.ts";
export * from "./peer_name.ts";
export * from "./status.ts";
export * from "./data_plane.ts";
export * from "./ticket.ts";
export * from "./feed.ts";
export * from "./proof.ts";
export * from "./ws_frames.ts";
export * from "./ws_handshake.ts";
export * from "./probe.ts";
