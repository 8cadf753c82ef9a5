// A peer's control session with the master: one WebSocket, hello on every (re)connect, and
// reconnects with backoff when the master restarts, so the master can rebuild its queues.
import type { Logger } from "../../imagetools/kit/mod.ts";
import {
  type HelloMessage,
  type MasterMessage,
  parseMasterMessage,
  type PeerMessage,
  type WelcomeMessage,
} from "../protocol/mod.ts";

export interface ControlSessionOptions {
  masterUrl: string;
  /** Built fresh on every connect: it carries what the peer holds now. */
  hello: () => HelloMessage;
  onWelcome?: (msg: WelcomeMessage) => void;
  onMessage: (msg: MasterMessage) => void;
  /** The master refused this peer (wrong image, wrong token): no point reconnecting. */
  onFatal: (message: string) => void;
  log: Logger;
  /** Backoff bounds in ms. */
  minDelay?: number;
  maxDelay?: number;
}

export function controlUrl(masterUrl: string): string {
  const u = new URL("/api/v1/control", masterUrl);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.href;
}

export class ControlSession {
  #o: ControlSessionOptions;
  #ws: WebSocket | null = null;
  #closed = false;
  #delay: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #welcomed = false;
  #everConnected = false;

  constructor(o: ControlSessionOptions) {
    this.#o = o;
    this.#delay = o.minDelay ?? 250;
  }

  get connected(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN && this.#welcomed;
  }

  start() {
    this.#connect();
  }

  #connect() {
    if (this.#closed) return;
    const ws = new WebSocket(controlUrl(this.#o.masterUrl));
    this.#ws = ws;
    this.#welcomed = false;
    ws.onopen = () => {
      this.#everConnected = true;
      this.#delay = this.#o.minDelay ?? 250;
      ws.send(JSON.stringify(this.#o.hello()));
    };
    ws.onmessage = (ev) => {
      let msg: MasterMessage;
      try {
        msg = parseMasterMessage(String(ev.data));
      } catch (err) {
        this.#o.log("bad-master-message", { error: (err as Error).message });
        return;
      }
      if (msg.type === "welcome") {
        this.#welcomed = true;
        this.#o.onWelcome?.(msg);
        return;
      }
      if (msg.type === "error") {
        this.#o.log("master-error", { error: msg.message });
        // Refused at hello: the master will refuse us again, so stop here.
        if (!this.#welcomed) {
          this.close();
          this.#o.onFatal(msg.message);
        }
        return;
      }
      this.#o.onMessage(msg);
    };
    ws.onclose = () => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      if (this.#closed) return;
      this.#o.log(this.#everConnected ? "master-lost" : "master-unreachable", {
        master: this.#o.masterUrl,
        retry: `${this.#delay}ms`,
      });
      this.#timer = setTimeout(() => this.#connect(), this.#delay);
      this.#delay = Math.min(this.#delay * 2, this.#o.maxDelay ?? 5000);
    };
    ws.onerror = () => {/* onclose follows */};
  }

  /** Hang up now and say hello again after `ms` (a client that must wait before its next try). */
  rest(ms: number) {
    if (this.#closed) return;
    const ws = this.#ws;
    this.#ws = null; // its onclose then schedules nothing
    ws?.close();
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#connect(), ms);
  }

  /** Send when connected; dropped otherwise (the next hello carries the state that matters). */
  send(msg: PeerMessage): boolean {
    if (this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(msg));
    return true;
  }

  close() {
    this.#closed = true;
    clearTimeout(this.#timer);
    const ws = this.#ws;
    this.#ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) {
      try {
        ws.close(1000, "bye");
      } catch { /* already closed */ }
    }
  }
}
