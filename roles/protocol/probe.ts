// The master's probe (roles/master/probe_route.ts serves it, roles/peers/probe.ts times it): a
// PC fetches a fixed blob before its hello, then says it has it, which ends its turn.
export const PROBE_PATH = "/api/v1/probe";
/** The response header naming the turn's token; the PC POSTs `PROBE_PATH?turn=TOKEN` when done. */
export const PROBE_TURN_HEADER = "x-cascade-probe-turn";
