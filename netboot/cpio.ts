// A cpio "newc" archive writer for the initramfs: entries in, bytes out. Hand-written (no
// library on npm/Deno does newc) because we need device nodes without root and byte-identical
// output: mtime 0, uid/gid 0, entries sorted by path, inode numbers from that order.

export type CpioEntry =
  | { type: "file"; path: string; mode?: number; data: Uint8Array }
  | { type: "dir"; path: string; mode?: number }
  | { type: "symlink"; path: string; target: string }
  | { type: "char" | "block"; path: string; mode?: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

const encoder = new TextEncoder();

/** "./a//b/" -> "a/b"; rejects absolute-escaping and empty paths. */
export function normalizeCpioPath(path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length === 0) throw new TypeError(`Cannot add "${path}" to a cpio archive: empty path`);
  if (parts.includes("..")) {
    throw new TypeError(`Cannot add "${path}" to a cpio archive: ".." is not allowed`);
  }
  return parts.join("/");
}

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new RangeError(`Cannot write cpio header field ${n}: out of range 0..0xffffffff`);
  }
  return n.toString(16).padStart(8, "0");
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function header(
  ino: number,
  mode: number,
  nlink: number,
  size: number,
  rdevMajor: number,
  rdevMinor: number,
  nameSize: number,
): string {
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
  // namesize, check
  return "070701" + [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, nameSize, 0]
    .map(hex8).join("");
}

function record(
  name: string,
  ino: number,
  mode: number,
  nlink: number,
  body: Uint8Array,
  rdev: [number, number] = [0, 0],
): Uint8Array[] {
  const nameBytes = encoder.encode(name + "\0");
  const head = encoder.encode(
    header(ino, mode, nlink, body.length, rdev[0], rdev[1], nameBytes.length),
  );
  const headPad = pad4(head.length + nameBytes.length);
  const out: Uint8Array[] = [head, nameBytes, new Uint8Array(headPad)];
  if (body.length) out.push(body, new Uint8Array(pad4(body.length)));
  return out;
}

/**
 * Sort and check entries: duplicate paths are an error; missing parent directories are added
 * (mode 0755) so the archive unpacks on its own.
 */
export function prepareCpioEntries(entries: CpioEntry[]): CpioEntry[] {
  const byPath = new Map<string, CpioEntry>();
  for (const e of entries) {
    const path = normalizeCpioPath(e.path);
    if (byPath.has(path)) throw new TypeError(`Cannot add "${path}" to a cpio archive twice`);
    byPath.set(path, { ...e, path });
  }
  for (const path of [...byPath.keys()]) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      const existing = byPath.get(parent);
      if (!existing) byPath.set(parent, { type: "dir", path: parent });
      else if (existing.type !== "dir") {
        throw new TypeError(
          `Cannot add "${path}" to a cpio archive: "${parent}" is not a directory`,
        );
      }
    }
  }
  // Byte order, not locale order: the same on every machine.
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The archive as a sequence of byte pieces (file data is passed through, not copied), so a
 * caller can stream a large initramfs into a compressor.
 */
export function* cpioPieces(entries: CpioEntry[]): Generator<Uint8Array> {
  const sorted = prepareCpioEntries(entries);
  let ino = 0;
  for (const e of sorted) {
    ino++;
    switch (e.type) {
      case "file":
        yield* record(e.path, ino, S_IFREG | (e.mode ?? 0o644), 1, e.data);
        break;
      case "dir":
        yield* record(e.path, ino, S_IFDIR | (e.mode ?? 0o755), 2, new Uint8Array());
        break;
      case "symlink":
        yield* record(e.path, ino, S_IFLNK | 0o777, 1, encoder.encode(e.target));
        break;
      case "char":
      case "block": {
        const kind = e.type === "char" ? S_IFCHR : S_IFBLK;
        yield* record(e.path, ino, kind | (e.mode ?? 0o600), 1, new Uint8Array(), [
          e.major,
          e.minor,
        ]);
        break;
      }
    }
  }
  yield* record("TRAILER!!!", 0, 0, 1, new Uint8Array());
}

/** The whole archive in one buffer (tests, small archives). */
export function writeCpio(entries: CpioEntry[]): Uint8Array {
  const pieces = [...cpioPieces(entries)];
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
