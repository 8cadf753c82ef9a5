// What other folders may import from netboot.
export * from "./boot_routes.ts";
export * from "./build_cli.ts";
export * from "./dnsmasq.ts";
