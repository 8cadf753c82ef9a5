import assert from "node:assert/strict";
import {
  chunkCount,
  chunkFileName,
  imageIdOf,
  type Manifest,
  parseManifest,
  serializeManifest,
  storedFileName,
  storedLength,
  zeroChunkHashes,
} from "./manifest.ts";
import { compressibleImage, expectedManifest, mulberry32, seededImage } from "./testkit.ts";

const CHUNK = 4096;
// 4 chunks: random, zero, random, and a short last one.
const IMAGE = seededImage(3 * CHUNK + 100, 7, [[CHUNK, 2 * CHUNK]]);
const VALID = expectedManifest(IMAGE, CHUNK, "fuzz.img");

Deno.test("serializeManifest output parses back to the same manifest", () => {
  const m = parseManifest(VALID.text);
  assert.deepEqual(m, VALID.manifest);
  assert.equal(serializeManifest(m), VALID.text);
  assert.equal(m.chunks[1].zero, true);
  assert.equal(imageIdOf(VALID.text), imageIdOf(new TextEncoder().encode(VALID.text)));
});

Deno.test("parseManifest names the field at fault", () => {
  const bad = (edit: (o: Record<string, unknown>) => void) => {
    const o = JSON.parse(VALID.text);
    edit(o);
    return () => parseManifest(JSON.stringify(o));
  };
  assert.throws(bad((o) => delete o.size), {
    message: 'Invalid manifest: missing field "size"',
  });
  assert.throws(bad((o) => (o.extra = 1)), { message: 'Invalid manifest: unknown field "extra"' });
  assert.throws(
    bad((o) => ((o.chunks as unknown[]).pop())),
    {
      message:
        'Invalid manifest: field "chunks" has 3 entries, but size 12388 and chunkSize 4096 need 4',
    },
  );
  assert.throws(
    bad((o) => ((o.chunks as Record<string, unknown>[])[0].zero = true)),
    {
      message:
        "Invalid manifest: chunk 0 is marked zero but its hashes are not those of zero bytes",
    },
  );
  assert.throws(() => parseManifest("{"), /^SyntaxError: Invalid manifest: not JSON/);
  assert.throws(() => chunkFileName({ sha256: "../../etc/passwd" }), {
    message: 'Invalid chunk hash "../../etc/passwd"',
  });
});

// ---- fuzzing --------------------------------------------------------------------------------

const TOKENS = [
  "null",
  "true",
  "false",
  "0",
  "-1",
  "1.5",
  "1e999",
  "4096",
  "9007199254740993",
  '""',
  '"x"',
  "{}",
  "[]",
  ",",
  ":",
  '"',
  "\\",
  "\u0000",
  "\n",
  "}",
  "]",
  '"zero"',
  '"../x"',
  '"__proto__":{},',
];
const VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  4096,
  2 ** 53,
  "",
  "x",
  "../../etc/passwd",
  [],
  {},
  [1],
  { a: 1 },
  "d41d8cd98f00b204e9800998ecf8427e",
  "D41D8CD98F00B204E9800998ECF8427E",
  "a".repeat(64),
  "\u0001name",
  "n".repeat(256),
  VALID.manifest.chunks[0].sha256,
  VALID.manifest.chunks[2].md5,
];

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rand, n: number) => Math.floor(r() * n);

/** One random mutation of the manifest text: at the byte level or of the decoded structure. */
function mutate(r: Rand, text: string): string {
  switch (int(r, 8)) {
    case 0: { // replace one character
      const i = int(r, text.length);
      return text.slice(0, i) + String.fromCharCode(int(r, 128)) + text.slice(i + 1);
    }
    case 1: { // delete a range
      const i = int(r, text.length);
      return text.slice(0, i) + text.slice(i + 1 + int(r, 40));
    }
    case 2: { // insert a token
      const i = int(r, text.length);
      return text.slice(0, i) + pick(r, TOKENS) + text.slice(i);
    }
    case 3: { // duplicate a range
      const i = int(r, text.length);
      const j = i + int(r, 80);
      return text.slice(0, j) + text.slice(i, j) + text.slice(j);
    }
    case 4: // truncate
      return text.slice(0, int(r, text.length));
    default: { // structural: set, delete or add a field, at the top or in a chunk
      const o = JSON.parse(text);
      const chunks = o.chunks as Record<string, unknown>[];
      const target: Record<string, unknown> = r() < 0.5 || !chunks.length
        ? o
        : chunks[int(r, chunks.length)];
      const keys = Object.keys(target);
      const what = int(r, 6);
      if (what === 0) delete target[pick(r, keys)];
      else if (what === 1) target[pick(r, ["extra", "constructor", "toString"])] = 1;
      else if (what === 2 && target === o) {
        // Grow, shrink or reorder the chunk list.
        const op = int(r, 3);
        if (op === 0) chunks.push(chunks[int(r, chunks.length)] ?? {});
        else if (op === 1) chunks.splice(int(r, chunks.length), 1);
        else chunks.reverse();
      } else target[pick(r, keys)] = pick(r, VALUES);
      return JSON.stringify(o);
    }
  }
}

/** An accepted manifest must hang together, whatever text it came from. */
function assertSelfConsistent(m: Manifest) {
  assert.equal(m.chunks.length, chunkCount(m.size, m.chunkSize));
  for (const [i, c] of m.chunks.entries()) {
    assert.match(c.md5, /^[0-9a-f]{32}$/);
    assert.match(c.sha256, /^[0-9a-f]{64}$/);
    if (c.zero) {
      const z = zeroChunkHashes(Math.min(m.chunkSize, m.size - i * m.chunkSize));
      assert.equal(c.md5, z.md5);
      assert.equal(c.sha256, z.sha256);
    }
    assert.equal(chunkFileName(c), `${c.sha256}.chunk`);
  }
  assert.deepEqual(parseManifest(serializeManifest(m)), m);
}

Deno.test("format 3 says how each non-zero chunk is stored, and is refused when it cannot be so", () => {
  // Chunks: text-like (zstd), zero, random (raw), text-like again (the same stored file).
  const image = compressibleImage(4 * CHUNK, 5);
  image.fill(0, CHUNK, 2 * CHUNK);
  image.set(seededImage(CHUNK, 6), 2 * CHUNK);
  image.copyWithin(3 * CHUNK, 0, CHUNK);
  const v3 = expectedManifest(image, CHUNK, "v3.img", { zstd: 3 });
  const m = parseManifest(v3.text);
  assert.deepEqual(m, v3.manifest);
  assert.equal(serializeManifest(m), v3.text);
  assert.equal(m.format, 3);
  assert.equal(m.md5, undefined); // the whole-image MD5: only when slicing was asked for it
  const withMd5 = expectedManifest(image, CHUNK, "v3.img", { zstd: 3, imageMd5: true });
  assert.deepEqual(parseManifest(withMd5.text), withMd5.manifest);
  assert.match(withMd5.text, /"md5":"[0-9a-f]{32}","sha256"/);
  assert.ok(m.chunks[0].zstd! > 0 && m.chunks[0].zstd! < CHUNK);
  assert.equal(m.chunks[2].raw, true);
  assert.equal(storedFileName(m.chunks[0]), `${m.chunks[0].sha256}.zst`);
  assert.equal(storedFileName(m.chunks[2]), `${m.chunks[2].sha256}.chunk`);
  assert.equal(storedLength(m, 0), m.chunks[0].zstd);
  assert.equal(storedLength(m, 2), CHUNK);

  const bad = (edit: (c: Record<string, unknown>[]) => void) => {
    const o = JSON.parse(v3.text);
    edit(o.chunks);
    return () => parseManifest(JSON.stringify(o));
  };
  assert.throws(bad((c) => (c[1].zstd = 10)), {
    message: 'Invalid manifest: chunk 1 is a zero chunk (never stored) but has "zstd" or "raw"',
  });
  assert.throws(bad((c) => delete c[2].raw), {
    message: 'Invalid manifest: chunk 2 has neither "zstd" nor "raw"',
  });
  assert.throws(bad((c) => (c[0].zstd = CHUNK)), {
    message:
      'Invalid manifest: chunk 0 field "zstd" (4096) is not a compressed length of 1..4095 bytes',
  });
  assert.throws(bad((c) => (c[2].raw = false)), {
    message: 'Invalid manifest: chunk 2 field "raw" (false) must be true, and without "zstd"',
  });
  assert.throws(bad((c) => (c[3].zstd = 7)), {
    message: "Invalid manifest: chunks 0 and 3 have the same SHA-256 but are stored differently",
  });
  // Older formats know nothing of stored forms.
  const o = JSON.parse(withMd5.text);
  o.format = 1;
  assert.throws(() => parseManifest(JSON.stringify(o)), {
    message: 'Invalid manifest: unknown field "zstd" in chunk 0',
  });
  // ... and always carry the whole image's MD5 and SHA-256; format 3 may leave both out.
  for (const field of ["md5", "sha256"]) {
    const old = JSON.parse(VALID.text);
    delete old[field];
    assert.throws(() => parseManifest(JSON.stringify(old)), {
      message: `Invalid manifest: missing field "${field}"`,
    });
  }
  const bare = expectedManifest(image, CHUNK, "v3.img", { zstd: 3, imageSha256: false });
  assert.doesNotMatch(bare.text.split("\n")[0], /md5|sha256/);
  assert.deepEqual(parseManifest(bare.text), bare.manifest);
});

Deno.test("manifest fuzzing: every mutation is accepted consistently or refused clearly", () => {
  const r = mulberry32(20240601);
  let accepted = 0;
  let refused = 0;
  for (let n = 0; n < 3000; n++) {
    let text = VALID.text;
    const rounds = 1 + int(r, 3);
    for (let k = 0; k < rounds; k++) {
      try {
        text = mutate(r, text);
      } catch {
        break; // a structural mutation needs JSON: keep what we have
      }
    }
    let m: Manifest;
    try {
      m = parseManifest(text);
    } catch (err) {
      assert.ok(err instanceof Error, `mutation ${n} threw a non-Error: ${String(err)}`);
      assert.match(err.message, /^Invalid manifest/, `mutation ${n}: ${JSON.stringify(text)}`);
      refused++;
      continue;
    }
    assertSelfConsistent(m);
    accepted++;
  }
  // Both outcomes must actually occur, or the fuzzer tests nothing.
  assert.ok(accepted > 50, `only ${accepted} mutations were accepted`);
  assert.ok(refused > 1000, `only ${refused} mutations were refused`);
});
