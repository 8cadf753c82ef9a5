// What other folders may import from roles/master/dashboard.
export * from "./chains.ts";
export * from "./page.ts";
export * from "./peer_text.ts";
