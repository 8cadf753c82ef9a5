// MD5 of four or eight equal-length buffers at once, in WebAssembly SIMD (an MD5 per 32-bit lane).
//
// WHY our own: slicing hashes every byte with MD5 twice (each chunk, and the whole image), and
// MD5 is the slow half (a third of SHA-256's speed with SHA-NI). One MD5 is a chain of
// dependent steps, but four independent chunks fill the four lanes of a v128, and a second group
// of four fills the gaps between one group's dependent steps, so eight lanes hash several times
// what node:crypto does on one core (figures: BENCHMARKS.md). No npm package hashes
// several buffers at once (hash-wasm and the like hash one stream), and the module is small
// enough to emit from this file: no build step, no binary in the repository.
//
// The buffers live in the caller's WebAssembly.Memory (slicing's page-aligned, shared chunk
// buffers), so the module imports that memory and hashes the chunks where they are.

// ---- the WebAssembly module ----------------------------------------------------------------

/** Per-step left rotations, by round. */
const SHIFTS = [[7, 12, 17, 22], [5, 9, 14, 20], [4, 11, 16, 23], [6, 10, 15, 21]];

/** MD5's additive constants: floor(|sin(i + 1)| × 2^32) (RFC 1321, 3.4). */
const K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32));

/** The message word step i reads (RFC 1321, 3.4). */
function wordIndex(i: number): number {
  const round = i >> 4;
  if (round === 0) return i;
  if (round === 1) return (5 * i + 1) % 16;
  if (round === 2) return (3 * i + 5) % 16;
  return (7 * i) % 16;
}

/** Unsigned LEB128 (the binary format's integers). */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

/** Signed LEB128 of a non-negative i32 (i32.const's immediate): 64 already needs two bytes. */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>>= 7;
    if (n === 0 && (byte & 0x40) === 0) return out.push(byte), out;
    out.push(byte | 0x80);
  }
}

const name = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

// Opcodes (WebAssembly core spec 2.0, 5.4; SIMD ones follow the 0xfd prefix).
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, LOCAL_TEE = 0x22;
const I32_CONST = 0x41, I32_ADD = 0x6a, I32_SUB = 0x6b, I32_EQZ = 0x45;
const BLOCK = 0x02, LOOP = 0x03, BR = 0x0c, BR_IF = 0x0d, END = 0x0b, EMPTY = 0x40;
const I32 = 0x7f, V128 = 0x7b;
const simd = (op: number) => [0xfd, ...uleb(op)];
const V128_LOAD = 0x00, V128_STORE = 0x0b, V128_CONST = 0x0c, I8X16_SHUFFLE = 0x0d;
const V128_NOT = 0x4d, V128_OR = 0x50, V128_XOR = 0x51, V128_BITSELECT = 0x52;
const I32X4_SHL = 0xab, I32X4_SHR_U = 0xad, I32X4_ADD = 0xae;

/** Byte lanes for i8x16.shuffle that interleave 32-bit words x0 y0 x1 y1 (or x2 y2 x3 y3). */
const UNPACK_LO32 = [0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23];
const UNPACK_HI32 = [8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31];
const UNPACK_LO64 = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
const UNPACK_HI64 = [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31];

/**
 * The code of md5(state, p0 .. p[4 × groups - 1], blocks): `blocks` 64-byte blocks from each
 * pointer into the state (per group of four lanes: A, B, C, D as four v128, 64 bytes a group).
 * Groups run interleaved step by step: one group's chain of dependent steps leaves the CPU idle
 * between them, which the other group's steps fill.
 */
function md5Body(groups: number): number[] {
  const lanes = 4 * groups;
  const STATE = 0, P = Array.from({ length: lanes }, (_, l) => 1 + l), BLOCKS = 1 + lanes;
  const first = BLOCKS + 1;
  let next = first;
  const v = () => next++;
  const four = () => [v(), v(), v(), v()];
  const G = Array.from({ length: groups }, () => ({
    S: four(), // A B C D
    SAVED: four(),
    W: Array.from({ length: 16 }, v),
    TMP: v(),
  }));
  const L = four(); // one 16-byte load per lane
  const T = four(); // transpose halfway
  const vectorLocals = next - first;

  const c: number[] = [];
  const get = (i: number) => c.push(LOCAL_GET, ...uleb(i));
  const set = (i: number) => c.push(LOCAL_SET, ...uleb(i));
  const op = (o: number) => c.push(...simd(o));
  const memarg = (offset: number) => [0, ...uleb(offset)];
  const shuffle = (x: number, y: number, lanes: number[], to: number) => {
    get(x), get(y), c.push(...simd(I8X16_SHUFFLE), ...lanes), set(to);
  };

  G.forEach(({ S }, g) => {
    for (let k = 0; k < 4; k++) {
      get(STATE), c.push(...simd(V128_LOAD), ...memarg(64 * g + 16 * k)), set(S[k]);
    }
  });
  c.push(BLOCK, EMPTY, LOOP, EMPTY);
  get(BLOCKS), c.push(I32_EQZ, BR_IF, 1);
  G.forEach(({ S, SAVED, W }, g) => {
    for (let k = 0; k < 4; k++) get(S[k]), set(SAVED[k]);
    // Gather: W[j] holds message word j of the group's four lanes (a 4 × 4 transpose).
    for (let q = 0; q < 4; q++) {
      for (let l = 0; l < 4; l++) {
        get(P[4 * g + l]), c.push(...simd(V128_LOAD), ...memarg(16 * q)), set(L[l]);
      }
      shuffle(L[0], L[1], UNPACK_LO32, T[0]);
      shuffle(L[0], L[1], UNPACK_HI32, T[1]);
      shuffle(L[2], L[3], UNPACK_LO32, T[2]);
      shuffle(L[2], L[3], UNPACK_HI32, T[3]);
      shuffle(T[0], T[2], UNPACK_LO64, W[4 * q]);
      shuffle(T[0], T[2], UNPACK_HI64, W[4 * q + 1]);
      shuffle(T[1], T[3], UNPACK_LO64, W[4 * q + 2]);
      shuffle(T[1], T[3], UNPACK_HI64, W[4 * q + 3]);
    }
  });
  // 64 steps; roles rotate (a, b, c, d) -> (d, a', b, c) by renaming, not by moving.
  const roles = G.map(({ S }) => [...S]);
  for (let i = 0; i < 64; i++) {
    const round = i >> 4;
    const s = SHIFTS[round][i & 3];
    G.forEach(({ W, TMP }, g) => {
      const [a, b, cc, d] = roles[g];
      // a + (W + K) first: it does not wait for b, the value the previous step just made.
      get(a), get(W[wordIndex(i)]), c.push(...simd(V128_CONST), ...splat32(K[i]));
      op(I32X4_ADD), op(I32X4_ADD);
      if (round === 0) get(cc), get(d), get(b), op(V128_BITSELECT); // (b & c) | (~b & d)
      else if (round === 1) get(b), get(cc), get(d), op(V128_BITSELECT); // (b & d) | (c & ~d)
      else if (round === 2) get(cc), get(d), op(V128_XOR), get(b), op(V128_XOR); // b ^ c ^ d
      else get(cc), get(b), get(d), op(V128_NOT), op(V128_OR), op(V128_XOR); // c ^ (b | ~d)
      op(I32X4_ADD);
      c.push(LOCAL_TEE, ...uleb(TMP), I32_CONST, ...sleb(s)), op(I32X4_SHL);
      get(TMP), c.push(I32_CONST, ...sleb(32 - s)), op(I32X4_SHR_U);
      op(V128_OR);
      get(b), op(I32X4_ADD);
      set(a);
      roles[g] = [d, a, b, cc];
    });
  }
  for (const { S, SAVED } of G) {
    for (let k = 0; k < 4; k++) get(S[k]), get(SAVED[k]), op(I32X4_ADD), set(S[k]);
  }
  for (const p of P) get(p), c.push(I32_CONST, ...sleb(64), I32_ADD), set(p);
  get(BLOCKS), c.push(I32_CONST, 1, I32_SUB), set(BLOCKS);
  c.push(BR, 0, END, END);
  G.forEach(({ S }, g) => {
    for (let k = 0; k < 4; k++) {
      get(STATE), get(S[k]), c.push(...simd(V128_STORE), ...memarg(64 * g + 16 * k));
    }
  });
  c.push(END);
  return [1, ...uleb(vectorLocals), V128, ...c];
}

function splat32(x: number): number[] {
  const out: number[] = [];
  for (let l = 0; l < 4; l++) out.push(x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, x >>> 24);
  return out;
}

/**
 * The module's bytes. It imports env.memory (`shared` must match that memory) and exports
 * md5(state, p0, .., p[4 × groups - 1], blocks), which runs `blocks` 64-byte blocks from each
 * pointer through the lanes' states at `state` (per group: A, B, C, D as four v128 of four
 * lanes each). Padding the messages and reading the digests out is the caller's job.
 */
export function md5LanesModule(shared: boolean, groups: 1 | 2): Uint8Array<ArrayBuffer> {
  const params = Array(6 + 4 * (groups - 1)).fill(I32);
  const types = section(1, [1, 0x60, ...uleb(params.length), ...params, 0]);
  const limits = shared ? [0x03, ...uleb(1), ...uleb(65536)] : [0x00, ...uleb(1)];
  const imports = section(2, [1, ...name("env"), ...name("memory"), 0x02, ...limits]);
  const funcs = section(3, [1, 0]);
  const exports = section(7, [1, ...name("md5"), 0x00, 0]);
  const body = md5Body(groups);
  const code = section(10, [1, ...uleb(body.length), ...body]);
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...types,
    ...imports,
    ...funcs,
    ...exports,
    ...code,
  ]);
}
