// One control session's WebSocket wired to the core: every message validated (a bad one closes
// only its session), and the session's limits kept (control_limits.ts).
import type { Logger } from "../../imagetools/kit/mod.ts";
import type { MasterCore, SessionKey } from "./core.ts";
import { parsePeerMessage, type PeerMessage, ProtocolError } from "../protocol/mod.ts";
import { type ControlLimits, DEFAULT_CONTROL_LIMITS, MessageBudget } from "./control_limits.ts";
import type { ControlChannel } from "./control_ws.ts";

/** Wire a WebSocket to the core: every message validated, a bad one closes only its session;
 * a session is closed when it says no hello in time or floods (control_limits.ts). */
/** What a control socket calls: one MasterCore, or a site of several (site.ts). */
export type ControlTarget = Pick<MasterCore, "connect" | "message" | "reject" | "disconnect">;

export function attachControlSocket(
  core: ControlTarget,
  socket: ControlChannel,
  address: string,
  log: Logger,
  limits: ControlLimits = DEFAULT_CONTROL_LIMITS,
) {
  const key: SessionKey = socket;
  const budget = new MessageBudget(limits);
  let helloTimer: ReturnType<typeof setTimeout> | undefined;
  let cut = false;
  socket.onopen = () => {
    core.connect(key, address);
    helloTimer = setTimeout(() => {
      cut = true;
      core.reject(key, `No hello within ${limits.helloMs} ms`);
    }, limits.helloMs);
  };
  socket.onmessage = (ev) => {
    if (cut) return; // refused already: what is still in the socket's buffer is not read
    if (!budget.take()) {
      cut = true;
      core.reject(key, budget.refusal());
      return;
    }
    try {
      const data = ev.data as string | ArrayBuffer;
      const msg: PeerMessage = parsePeerMessage(data);
      if (msg.type === "hello") clearTimeout(helloTimer);
      core.message(key, msg);
    } catch (err) {
      if (err instanceof ProtocolError) core.reject(key, err.message);
      else {
        // A bug of ours must not take the master down: log it and drop that session only.
        log("internal-error", { address, error: (err as Error).stack ?? String(err) });
        core.reject(key, "Internal error in the master; see its log");
      }
    }
  };
  socket.onclose = () => {
    clearTimeout(helloTimer);
    core.disconnect(key);
  };
  socket.onerror = () => {/* onclose follows */};
}
