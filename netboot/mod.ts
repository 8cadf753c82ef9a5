// What other folders may import from netboot.
export * from "./boot_routes.ts";
export * from "./build_cli.ts";
export * from "./build_info.ts";
export * from "./cmdline.ts";
export * from "./dnsmasq.ts";
export * from "./mac.ts";
export * from "./sys_block.ts";
export * from "./target_rule.ts";
export * from "./tftp_server.ts";
