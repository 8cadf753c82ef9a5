// The one seam of the file-system parsers: they read the disk only through `read(offset, length)`,
// so they are pure over whatever serves the bytes (an open image in slice, a Uint8Array in tests).

/** Read `length` bytes at byte `offset` of the disk; a range past its end is an error. */
export type ReadAt = (offset: number, length: number) => Promise<Uint8Array>;

/** A ReadAt over bytes in memory (tests, and parsers that re-read a table they hold). */
export function bytesReader(bytes: Uint8Array): ReadAt {
  return (offset, length) => {
    if (offset < 0 || length < 0 || offset + length > bytes.length) {
      return Promise.reject(
        new RangeError(
          `Cannot read ${length} bytes at offset ${offset}: the disk is ${bytes.length} bytes`,
        ),
      );
    }
    return Promise.resolve(bytes.subarray(offset, offset + length));
  };
}

/** Little-endian field readers over a byte slice. */
export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function u8(b: Uint8Array, at: number): number {
  return b[at];
}

export function u16(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}

export function u32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/** A 64-bit little-endian field as a number; beyond 2^53 it is refused (no disk is that big). */
export function u64(b: Uint8Array, at: number): number {
  const v = u32(b, at) + u32(b, at + 4) * 2 ** 32;
  if (!Number.isSafeInteger(v)) {
    throw new RangeError(`Invalid 64-bit field at byte ${at}: ${v} is beyond 2^53`);
  }
  return v;
}

export function ascii(b: Uint8Array, at: number, length: number): string {
  return String.fromCharCode(...b.subarray(at, at + length));
}

/** Why a file system was found but is kept whole (its used-block map is not trusted). */
export class NotUnderstood extends Error {}
