// What other folders may import from roles/master/dashboard.
export * from "./page.ts";
