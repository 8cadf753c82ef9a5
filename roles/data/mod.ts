// What other folders may import from roles/data.
export * from "./chunk_server.ts";
export * from "./chunk_source.ts";
export * from "./rate_limit.ts";
export * from "./receiver.ts";
export { isDiskFailure, ReceiveError, type ReceiveReason } from "./receive_error.ts";
export { type ChunkPace, DEFAULT_PACE, type FetchLike } from "./chunk_fetch.ts";
export { DEFAULT_REQUEST_TIMEOUT_MS, type FetchOptions } from "./transfer.ts";
export * from "./target_disk.ts";
export { keepMd5Warm } from "./md5_pool.ts";
export { guardedServe, type GuardedServer, type ServeHandler } from "./serve_guard.ts";
export {
  answerAndClose,
  type Gate,
  gatedServe,
  HEAD_MS,
  IDLE_MS,
  RELAY_SLOTS,
  writeAll,
} from "./conn_gate.ts";
export {
  defaultLimits,
  type Refusal,
  type ServeLimits,
  type Slot,
  SlotCounter,
  totalFor,
} from "./slots.ts";
export { AcceptBackoff } from "./accept_backoff.ts";
export { EncodedBody, type Encoding, etagMatches, pickEncoding } from "./encoded_body.ts";
