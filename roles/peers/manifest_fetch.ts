// The manifest before hello: from the peers that hold it, checked, else from the master.
// 682 PCs pulling a 6 GB image's manifest (817 KB, 347 KB in gzip) through the master's one
// port is ~237 MB before the first chunk moves; asking the master only which peers hold it
// (GET /api/v1/manifest/sources, a few hundred bytes) moves that load onto the peers' ports.
// The image id the master names is the SHA-256 of the manifest's exact bytes, so a peer's copy
// is used only when it hashes to that id: a peer that lies or fails costs a try, and the master's
// own /api/v1/manifest is the last resort, as before. Nothing unverified is used.
import { imageIdOf } from "../../imagetools/mod.ts";
import type { Logger } from "../../imagetools/kit/mod.ts";
import { dataManifestUrl } from "../protocol/mod.ts";

/** How long one peer gets to hand over the manifest before the next is asked. */
export const PEER_MANIFEST_TIMEOUT_MS = 5_000;

/** The master's answer to GET /api/v1/manifest/sources. */
export interface ManifestSources {
  id: string;
  sources: string[];
}

/**
 * GET a master route, retrying while the master is not up yet (PCs may boot first). `image`
 * (an image id or the image's name) picks one of a master's images; a 404 "No image" is final
 * (the master serves other images: waiting will not change that). `answer` turns a response
 * into the result. With `optional`, any other 404 gives undefined at once (a master, or a
 * test's stand-in, without the route).
 */
async function askMaster<T>(
  masterUrl: string,
  path: string,
  log: Logger,
  timeoutSeconds: number,
  image: string | undefined,
  answer: (res: Response) => Promise<T | undefined>,
  optional = false,
): Promise<T | undefined> {
  const at = new URL(path, masterUrl);
  if (image !== undefined) at.searchParams.set("image", image);
  const url = at.href;
  const start = performance.now();
  let final: Error | undefined;
  let delay = 250;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      if (res.ok) return await answer(res);
      const body = await res.text();
      if (res.status === 404 && image !== undefined && body.includes("No image")) {
        let why = body.slice(0, 300);
        try {
          why = String(JSON.parse(body).error ?? why);
        } catch { /* not JSON: the text as it came */ }
        final = new Error(`Refusing to image from "${masterUrl}": ${why}`);
      }
      if (res.status === 404 && optional && !final) return undefined;
      throw new Error(`HTTP ${res.status} ${body.slice(0, 200)}`);
    } catch (err) {
      if (final) throw final;
      const waited = (performance.now() - start) / 1000;
      if (timeoutSeconds > 0 && waited > timeoutSeconds) {
        throw new Error(
          `Cannot fetch the manifest from "${url}" after ${Math.round(waited)} s: ${
            (err as Error).message
          }`,
          { cause: err },
        );
      }
      log("waiting-for-master", { url, error: (err as Error).message });
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}

/** Fetch the manifest from the master itself (the last resort, and older masters). */
async function fetchManifest(
  masterUrl: string,
  log: Logger,
  timeoutSeconds: number,
  image?: string,
): Promise<Uint8Array> {
  const bytes = await askMaster(
    masterUrl,
    "/api/v1/manifest",
    log,
    timeoutSeconds,
    image,
    async (res) => new Uint8Array(await res.arrayBuffer()),
  );
  return bytes!;
}

/** One peer's manifest if it hashes to `id`; undefined (logged) when it fails or lies. */
async function fromPeer(source: string, id: string, log: Logger): Promise<Uint8Array | undefined> {
  const url = dataManifestUrl(source);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(PEER_MANIFEST_TIMEOUT_MS) });
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status}`);
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    const got = imageIdOf(bytes);
    if (got === id) return bytes;
    log("manifest.refused", { from: source, expected: id, got });
  } catch (err) {
    log("manifest.peer-failed", { from: source, error: (err as Error).message });
  }
  return undefined;
}

/**
 * The manifest for `image` (or the master's first image): from a peer the master names, its
 * SHA-256 checked against the id the master gives; else from the master. Logs where it came from.
 */
export async function fetchManifestFromPeers(
  masterUrl: string,
  log: Logger,
  timeoutSeconds: number,
  image?: string,
): Promise<{ bytes: Uint8Array; from: string }> {
  const sources = await askMaster(
    masterUrl,
    "/api/v1/manifest/sources",
    log,
    timeoutSeconds,
    image,
    async (res) => parseSources(await res.json().catch(() => null)),
    true,
  );
  if (sources) {
    for (const source of sources.sources) {
      const bytes = await fromPeer(source, sources.id, log);
      if (bytes) {
        log("manifest", { from: source, id: sources.id, bytes: bytes.byteLength });
        return { bytes, from: source };
      }
    }
  }
  const bytes = await fetchManifest(masterUrl, log, timeoutSeconds, sources?.id ?? image);
  log("manifest", { from: masterUrl, id: imageIdOf(bytes), bytes: bytes.byteLength });
  return { bytes, from: masterUrl };
}

/** The sources answer, checked: a malformed one counts as none (the master is asked itself). */
function parseSources(body: unknown): ManifestSources | undefined {
  const b = body as Partial<ManifestSources> | null;
  if (!b || typeof b.id !== "string" || !/^[0-9a-f]{64}$/.test(b.id)) return undefined;
  if (!Array.isArray(b.sources)) return undefined;
  const sources = b.sources.filter((s): s is string =>
    typeof s === "string" && /^https?:\/\//.test(s)
  ).slice(0, 8);
  return { id: b.id, sources };
}
