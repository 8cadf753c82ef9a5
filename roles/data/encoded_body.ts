// The manifest at scale: every PC fetches it before the first chunk moves (from the master, or
// from a peer's chunk server that holds it), so it is encoded once (zstd and gzip, on first
// ask) and served in whatever the PC accepts, with an ETag named by the image id, so a PC or
// browser that holds it already gets a 304. The manifest of a 6 GB image is mostly hex hashes
// (744-817 KB); compressed it is well under half that.
//
// Used by the master (GET /api/v1/manifest, GET /api/v1/image) and every chunk server
// (GET /v1/manifest).
import { gzipSync, zstdCompressSync } from "node:zlib";
import type { Context } from "hono";

export type Encoding = "zstd" | "gzip" | "identity";

/**
 * The encoding to answer with, from an Accept-Encoding header: zstd before gzip (smaller and
 * faster to decode), each only when its q is above 0; identity otherwise.
 */
export function pickEncoding(accept: string | undefined): Encoding {
  const q = new Map<string, number>();
  for (const part of (accept ?? "").split(",")) {
    const [name, ...params] = part.trim().toLowerCase().split(";");
    if (!name) continue;
    const qp = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    const value = qp ? Number(qp.slice(2)) : 1;
    q.set(name, Number.isFinite(value) ? value : 0);
  }
  const ok = (name: string) => (q.get(name) ?? q.get("*") ?? 0) > 0;
  if (ok("zstd")) return "zstd";
  if (ok("gzip")) return "gzip";
  return "identity";
}

/** Does an If-None-Match header name this ETag (or "*")? */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(",").map((t) => t.trim().replace(/^W\//, "")).some((t) =>
    t === "*" || t === etag
  );
}

/** Serves one body (the manifest, the image summary) encoded once per encoding, with an ETag. */
export class EncodedBody {
  #bytes: Uint8Array;
  #type: string;
  #tag: string;
  #encoded = new Map<Encoding, Uint8Array>();
  /** Bytes of bodies sent, per encoding (for the benchmark and the log). */
  readonly sent: Record<Encoding, number> = { zstd: 0, gzip: 0, identity: 0 };

  /** `tag` names the body (the image id): the ETag is `"<tag>"` plus the encoding. */
  constructor(bytes: Uint8Array, contentType: string, tag: string) {
    this.#bytes = bytes;
    this.#type = contentType;
    this.#tag = tag;
  }

  encoded(e: Encoding): Uint8Array {
    let body = this.#encoded.get(e);
    if (!body) {
      body = e === "identity" ? this.#bytes : new Uint8Array(
        e === "zstd" ? zstdCompressSync(this.#bytes) : gzipSync(this.#bytes, { level: 9 }),
      );
      this.#encoded.set(e, body);
    }
    return body;
  }

  etag(e: Encoding): string {
    return `"${this.#tag}${e === "identity" ? "" : `-${e}`}"`;
  }

  respond(c: Context, extra: Record<string, string> = {}): Response {
    const e = pickEncoding(c.req.header("accept-encoding"));
    const headers: Record<string, string> = {
      "content-type": this.#type,
      etag: this.etag(e),
      vary: "accept-encoding",
      // Revalidate every time: the URL names the master's image, which a restart may change.
      "cache-control": "no-cache",
      ...extra,
    };
    if (etagMatches(c.req.header("if-none-match"), this.etag(e))) {
      return new Response(null, { status: 304, headers });
    }
    if (e !== "identity") headers["content-encoding"] = e;
    const body = this.encoded(e);
    this.sent[e] += body.byteLength;
    return new Response(body as BufferSource, { headers });
  }
}
