// Page-aligned memory: O_DIRECT writes need aligned buffers and JS cannot ask for an aligned
// allocation, but a WebAssembly.Memory's bytes start on a page boundary. allocAligned hands out
// such buffers (shared ones too, which hashing workers read in place) and remembers them.
/** O_DIRECT wants buffer address, file offset and length aligned to the logical block size;
 * 4 KiB covers every common device (512-byte and 4K sectors). */
export const DIRECT_ALIGN = 4096;

const WASM_PAGE = 65536;

/** The backing stores allocAligned made: views into them at aligned offsets need no staging. */
const alignedStores = new WeakSet<ArrayBufferLike>();

/**
 * A zero-filled Uint8Array of `length` bytes whose first byte sits on a page boundary. With
 * `shared`, it is backed by a SharedArrayBuffer, so it can be posted to a Worker without a copy.
 */
export function allocAligned(length: number, opts: { shared?: boolean } = {}): Uint8Array {
  return new Uint8Array(alignedMemory(length, opts).buffer, 0, length);
}

/** The memory behind allocAligned, of at least `length` bytes, for code that also runs
 * WebAssembly over the buffers (its views at aligned offsets are O_DIRECT-ready too). */
export function alignedMemory(length: number, opts: { shared?: boolean } = {}): WebAssembly.Memory {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`Invalid buffer length ${length}: must be a whole number of bytes`);
  }
  const pages = Math.max(1, Math.ceil(length / WASM_PAGE));
  const memory = opts.shared
    ? new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true })
    : new WebAssembly.Memory({ initial: pages });
  alignedStores.add(memory.buffer);
  return memory;
}

/** True when `bytes` starts at an O_DIRECT-aligned address (a view into allocAligned memory). */
export function isAligned(bytes: Uint8Array): boolean {
  return alignedStores.has(bytes.buffer) && bytes.byteOffset % DIRECT_ALIGN === 0;
}
