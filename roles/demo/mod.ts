// What other folders may import from roles/demo.
export * from "./demo.ts";
export * from "./lab_processes.ts";
