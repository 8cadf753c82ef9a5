// What other folders may import from roles/planner.
export * from "./cli.ts";
export * from "./simulate.ts";
