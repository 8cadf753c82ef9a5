// The checksums file-system metadata carries: CRC-32C (ext4's metadata_csum, XFS v5, Btrfs) and
// the CRC-16 of ext4's uninit_bg. WHY here: node:zlib and node:crypto have neither (only CRC-32).
// Both in Linux's form (lib/crc32c, lib/crc16): the caller gives the seed and no inversion is
// applied, so the kernel's chained calls read the same here; crc32c() is the standard digest.

function table(poly: number, rounds: number): Uint32Array[] {
  const t = [new Uint32Array(256)];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[0][n] = c >>> 0;
  }
  // Slicing by 8 (t[k][n]: byte n followed by k zero bytes): ~8 × fewer dependent steps.
  for (let k = 1; k < rounds; k++) {
    t.push(new Uint32Array(256));
    for (let n = 0; n < 256; n++) t[k][n] = (t[k - 1][n] >>> 8) ^ t[0][t[k - 1][n] & 255];
  }
  return t;
}

const C = table(0x82f63b78, 8);
const [C0, C1, C2, C3, C4, C5, C6, C7] = C;
const A = table(0xa001, 1)[0];

/** Linux's crc32c(seed, bytes): the reflected CRC-32C update, without inversions. */
export function crc32cRaw(seed: number, bytes: Uint8Array): number {
  let c = seed >>> 0;
  let i = 0;
  const end8 = bytes.length - (bytes.length % 8);
  for (; i < end8; i += 8) {
    const lo = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    c = C7[lo & 255] ^ C6[(lo >>> 8) & 255] ^ C5[(lo >>> 16) & 255] ^ C4[lo >>> 24] ^
      C3[bytes[i + 4]] ^ C2[bytes[i + 5]] ^ C1[bytes[i + 6]] ^ C0[bytes[i + 7]];
  }
  for (; i < bytes.length; i++) c = (c >>> 8) ^ C0[(c ^ bytes[i]) & 255];
  return c >>> 0;
}

/** The standard CRC-32C of `bytes` (initial and final inversion), as XFS and Btrfs store it. */
export function crc32c(bytes: Uint8Array): number {
  return ~crc32cRaw(0xffffffff, bytes) >>> 0;
}

/** Linux's crc16(seed, bytes): CRC-16/ARC's update (polynomial 0x8005 reflected). */
export function crc16(seed: number, bytes: Uint8Array): number {
  let c = seed & 0xffff;
  for (let i = 0; i < bytes.length; i++) c = (c >>> 8) ^ A[(c ^ bytes[i]) & 255];
  return c;
}

/** Whether `bytes` carry their own CRC-32C, little-endian at byte `at`, computed over them with
 * that field as zeros (XFS v5's metadata: xfs_verify_cksum). */
export function crc32cFieldHolds(bytes: Uint8Array, at: number): boolean {
  let c = crc32cRaw(0xffffffff, bytes.subarray(0, at));
  c = crc32cRaw(c, new Uint8Array(4));
  c = ~crc32cRaw(c, bytes.subarray(at + 4)) >>> 0;
  const stored =
    (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>>
    0;
  return c === stored;
}
