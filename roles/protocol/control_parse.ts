// Parsing and validation of control messages (control.ts: the messages). Pure. Every inbound
// message is checked here, and every bad field gets one error naming the message, the field
// and the value.
import { normalizeMac } from "../../netboot/mod.ts";
import {
  type MasterMessage,
  MAX_MESSAGE_BYTES,
  type PeerMessage,
  PROTOCOL_VERSION,
} from "./control.ts";
import { isPeerName, PEER_NAME_RULE } from "./peer_name.ts";

/** A message that breaks the protocol: the master answers with `error` and closes the session. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

type Obj = Record<string, unknown>;

function str(o: Obj, key: string, max = 256, optional = false): string | undefined {
  const v = o[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== "string" || v.length === 0 || v.length > max) {
    throw new ProtocolError(
      `Invalid "${o.type}" message: field "${key}" (${
        JSON.stringify(v) ?? "missing"
      }) must be a string of 1..${max} characters`,
    );
  }
  return v;
}

function int(o: Obj, key: string, min: number, max: number, optional = false): number | undefined {
  const v = o[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new ProtocolError(
      `Invalid "${o.type}" message: field "${key}" (${
        JSON.stringify(v) ?? "missing"
      }) must be a whole number ${min}..${max}`,
    );
  }
  return v;
}

function num(o: Obj, key: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new ProtocolError(
      `Invalid "${o.type}" message: field "${key}" (${
        JSON.stringify(v) ?? "missing"
      }) must be a number >= 0`,
    );
  }
  return v;
}

function positive(o: Obj, key: string): number {
  const v = num(o, key);
  if (v === 0 || v > 1e12) {
    throw new ProtocolError(
      `Invalid "${o.type}" message: field "${key}" (${v}) must be bytes/s > 0 and <= 1e12`,
    );
  }
  return v;
}

function bool(o: Obj, key: string): boolean {
  const v = o[key];
  if (typeof v !== "boolean") {
    throw new ProtocolError(
      `Invalid "${o.type}" message: field "${key}" (${
        JSON.stringify(v) ?? "missing"
      }) must be true or false`,
    );
  }
  return v;
}

function onlyKeys(o: Obj, keys: string[]) {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) {
      throw new ProtocolError(`Invalid "${o.type}" message: unknown field "${k}"`);
    }
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

function validUrl(o: Obj, key: string): string | undefined {
  const v = str(o, key, 512, true);
  if (v === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ProtocolError(`Invalid "${o.type}" message: field "${key}" ("${v}") is not a URL`);
  }
  if (u.protocol !== "http:") {
    throw new ProtocolError(`Invalid "${o.type}" message: field "${key}" ("${v}") is not http://`);
  }
  return v.replace(/\/+$/, "");
}

/** Parse one inbound control message; throws ProtocolError naming what is wrong. */
export function parsePeerMessage(raw: string | ArrayBuffer | Uint8Array): PeerMessage {
  const size = typeof raw === "string" ? raw.length : raw.byteLength;
  if (size > MAX_MESSAGE_BYTES) {
    throw new ProtocolError(`Message of ${size} bytes is larger than ${MAX_MESSAGE_BYTES} bytes`);
  }
  const text = typeof raw === "string" ? raw : new TextDecoder().decode(raw);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ProtocolError(`Message is not JSON: ${JSON.stringify(text.slice(0, 40))}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ProtocolError("Message is not a JSON object");
  }
  const o = v as Obj;
  switch (o.type) {
    case "hello": {
      onlyKeys(o, [
        "type",
        "version",
        "role",
        "name",
        "mac",
        "imageId",
        "port",
        "url",
        "capacity",
        "held",
        "complete",
        "token",
        "switch",
        "switchPort",
        "probe",
        "portRate",
        "disk",
        "diskReason",
      ]);
      const version = int(o, "version", 0, 1000)!;
      if (version !== PROTOCOL_VERSION) {
        throw new ProtocolError(
          `Unsupported protocol version ${version} (this master speaks ${PROTOCOL_VERSION})`,
        );
      }
      const role = o.role;
      if (role !== "client" && role !== "server" && role !== "fake") {
        throw new ProtocolError(
          `Invalid "hello" message: field "role" (${
            JSON.stringify(role) ?? "missing"
          }) must be "client", "server" or "fake"`,
        );
      }
      const name = str(o, "name", 64)!;
      if (!isPeerName(name)) {
        throw new ProtocolError(
          `Invalid "hello" message: field "name" ("${name}") must be ${PEER_NAME_RULE}`,
        );
      }
      const given = str(o, "mac", 17, true);
      const mac = given === undefined ? undefined : normalizeMac(given);
      if (mac === null) {
        throw new ProtocolError(`Invalid "hello" message: field "mac" ("${given}") is not a MAC`);
      }
      const imageId = str(o, "imageId", 64)!;
      if (!HEX64.test(imageId)) {
        throw new ProtocolError(
          `Invalid "hello" message: field "imageId" ("${imageId}") is not 64 hex digits`,
        );
      }
      const port = int(o, "port", 1, 65535, true);
      const url = validUrl(o, "url");
      if ((role !== "client") && port === undefined && url === undefined) {
        throw new ProtocolError(`Invalid "hello" message: a ${role} must give "port" or "url"`);
      }
      return {
        type: "hello",
        version,
        role,
        name,
        ...(mac ? { mac } : {}),
        imageId,
        ...(port !== undefined ? { port } : {}),
        ...(url !== undefined ? { url } : {}),
        capacity: int(o, "capacity", 1, 64)!,
        held: int(o, "held", 0, Number.MAX_SAFE_INTEGER)!,
        complete: bool(o, "complete"),
        ...(o.token !== undefined ? { token: str(o, "token", 256)! } : {}),
        ...(o.switch !== undefined ? { switch: str(o, "switch", 128)! } : {}),
        ...(o.switchPort !== undefined ? { switchPort: str(o, "switchPort", 128)! } : {}),
        ...(o.probe !== undefined ? { probe: positive(o, "probe") } : {}),
        ...(o.portRate !== undefined ? { portRate: positive(o, "portRate") } : {}),
        ...(o.disk !== undefined ? { disk: str(o, "disk", 256)! } : {}),
        ...(o.diskReason !== undefined ? { diskReason: str(o, "diskReason", 2048)! } : {}),
      };
    }
    case "proof": {
      onlyKeys(o, ["type", "sha256"]);
      const sha256 = str(o, "sha256", 64)!;
      if (!HEX64.test(sha256)) {
        throw new ProtocolError(`Invalid "proof" message: field "sha256" is not 64 hex digits`);
      }
      return { type: "proof", sha256 };
    }
    case "progress":
      onlyKeys(o, ["type", "held", "bytes", "rate"]);
      return {
        type: "progress",
        held: int(o, "held", 0, Number.MAX_SAFE_INTEGER)!,
        bytes: int(o, "bytes", 0, Number.MAX_SAFE_INTEGER)!,
        rate: num(o, "rate"),
      };
    case "received":
      onlyKeys(o, ["type"]);
      return { type: "received" };
    case "verified": {
      onlyKeys(o, ["type", "ok", "bad", "seconds"]);
      const bad = o.bad;
      if (
        !Array.isArray(bad) || bad.length > 100000 ||
        !bad.every((i) => Number.isSafeInteger(i) && i >= 0)
      ) {
        throw new ProtocolError(
          `Invalid "verified" message: field "bad" must be a list of chunk indexes`,
        );
      }
      return { type: "verified", ok: bool(o, "ok"), bad, seconds: num(o, "seconds") };
    }
    case "failed":
      onlyKeys(o, ["type", "server", "reason", "detail"]);
      return {
        type: "failed",
        ...(o.server !== undefined ? { server: str(o, "server", 128)! } : {}),
        reason: str(o, "reason", 64)!,
        detail: str(o, "detail", 1024)!,
      };
    case "finished":
      onlyKeys(o, ["type", "ok", "step", "detail"]);
      return {
        type: "finished",
        ok: bool(o, "ok"),
        step: str(o, "step", 128)!,
        detail: str(o, "detail", 2048)!,
      };
    default:
      throw new ProtocolError(
        `Unknown message type ${JSON.stringify(o.type) ?? "(missing)"}`,
      );
  }
}

/** Parse a message from the master (peers trust the master, but still fail clearly on junk). */
export function parseMasterMessage(raw: string): MasterMessage {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new ProtocolError(`Master sent a message that is not JSON: ${raw.slice(0, 40)}`);
  }
  const o = v as Obj;
  switch (o?.type) {
    case "welcome":
    case "assign":
    case "serve":
    case "pace":
    case "challenge":
    case "proved":
    case "end":
    case "error":
      return o as unknown as MasterMessage;
    default:
      throw new ProtocolError(`Master sent an unknown message type ${JSON.stringify(o?.type)}`);
  }
}
