// The server side of the WebSocket opening handshake (RFC 6455 4.2), pure: read a request head,
// decide whether it asks for a WebSocket, and write the 101 (or the refusal) in answer.
import { createHash } from "node:crypto";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The most bytes a request head may have (the line and every header). */
export const MAX_HEAD_BYTES = 8192;

export interface RequestHead {
  method: string;
  /** The request target as sent ("/api/v1/control?x=1"). */
  target: string;
  version: string;
  /** Header names lowercased; repeated headers joined with ", ". */
  headers: Map<string, string>;
}

/** Where the head ends in `bytes` (the index after the blank line), or -1 if it is not in yet. */
export function headEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (
      bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13
    ) return i + 1;
  }
  return -1;
}

/** Parse a request head (without the blank line's bytes after it); null when malformed. */
export function parseHead(bytes: Uint8Array): RequestHead | null {
  const text = new TextDecoder("latin1").decode(bytes);
  const lines = text.split("\r\n");
  const m = /^([A-Z]+) (\S+) (HTTP\/\d\.\d)$/.exec(lines[0]);
  if (!m) return null;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0 || /[\s]/.test(line.slice(0, colon))) return null;
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    const had = headers.get(name);
    headers.set(name, had === undefined ? value : `${had}, ${value}`);
  }
  return { method: m[1], target: m[2], version: m[3], headers };
}

/** Does a comma-separated header hold this token (case-insensitive)? */
function hasToken(value: string | undefined, token: string): boolean {
  return (value ?? "").split(",").some((t) => t.trim().toLowerCase() === token);
}

/** Does this head ask to upgrade to a WebSocket? */
export function wantsWebSocket(head: RequestHead): boolean {
  return hasToken(head.headers.get("upgrade"), "websocket");
}

/** The Sec-WebSocket-Accept answer to a key. */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

/** A whole HTTP/1.1 response that ends the connection: status, JSON body `{error}`. */
export function refusal(
  status: number,
  error: string,
  headers: Record<string, string> = {},
): Uint8Array {
  const body = JSON.stringify({ error });
  const reason = REASONS[status] ?? "Error";
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  return new TextEncoder().encode(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\n` +
      `content-length: ${
        new TextEncoder().encode(body).length
      }\r\n${extra}connection: close\r\n\r\n${body}`,
  );
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  503: "Service Unavailable",
};

/** The answer to an upgrade request: the 101's bytes, or the refusal's (then close). */
export function upgradeAnswer(head: RequestHead): { ok: boolean; bytes: Uint8Array } {
  const no = (status: number, error: string, headers?: Record<string, string>) => ({
    ok: false,
    bytes: refusal(status, error, headers),
  });
  if (head.method !== "GET") return no(400, `A WebSocket opens with GET, not ${head.method}`);
  if (head.version !== "HTTP/1.1") {
    return no(400, `A WebSocket needs HTTP/1.1, not ${head.version}`);
  }
  if (!hasToken(head.headers.get("connection"), "upgrade")) {
    return no(400, 'A WebSocket request needs "Connection: Upgrade"');
  }
  const version = head.headers.get("sec-websocket-version");
  if (version !== "13") {
    return no(426, `WebSocket version ${JSON.stringify(version ?? "")} is not 13`, {
      "sec-websocket-version": "13",
    });
  }
  const key = head.headers.get("sec-websocket-key") ?? "";
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) {
    return no(400, `Sec-WebSocket-Key ${JSON.stringify(key)} is not 16 bytes in base64`);
  }
  return {
    ok: true,
    bytes: new TextEncoder().encode(
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n" +
        `sec-websocket-accept: ${acceptKey(key)}\r\n\r\n`,
    ),
  };
}
