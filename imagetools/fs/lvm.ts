// LVM2 physical volumes (RHEL and Ubuntu Server install on them): the PV's label and its
// current metadata text (the volume group) say where each logical volume's extents lie. A
// logical volume of one linear segment on this PV is a contiguous range of the disk, probed for
// a file system like a partition; anything else (several segments, striped, thin, RAID, cache,
// a segment on another PV) is kept whole, like the PV's own metadata and unallocated extents.
// The metadata is believed only when the label's and metadata area header's checksums and the
// metadata text's own checksum hold (a stale copy could name extents that belong to another
// volume now). Pure over a ReadAt.
import { crc32 } from "node:zlib";
import { ascii, NotUnderstood, type ReadAt, u32, u64 } from "./reader.ts";

const SECTOR = 512;
const MDA_MAGIC = " LVM2 x[5A%r0N*>";
const INITIAL_CRC = 0xf597a6cf;

/** LVM's calc_crc(INITIAL_CRC, ...): zlib's CRC-32 without its final inversion, seeded. */
export function lvmCrc(bytes: Uint8Array): number {
  return ~crc32(bytes, ~INITIAL_CRC >>> 0) >>> 0;
}

export interface LogicalVolume {
  /** "vg/lv". */
  name: string;
  /** Byte offset and length on the disk. */
  start: number;
  size: number;
}

export interface PhysicalVolume {
  vg: string;
  /** The logical volumes that are one linear range here, in disk order. */
  volumes: LogicalVolume[];
  /** The others, with why ("vg/lv: 2 segments"). */
  skipped: string[];
}

// The metadata text: sections `name { ... }`, `key = value`, values numbers, "strings" and
// [lists]; `#` comments. Small enough to parse here (no package reads LVM2's format).
export type LvmValue = number | string | LvmValue[] | LvmSection;
export interface LvmSection {
  [key: string]: LvmValue;
}

export function parseLvmText(text: string): LvmSection {
  const tokens = text.match(/#[^\n]*|"(?:[^"\\]|\\.)*"|[{}[\]=,]|[^\s{}[\]=,#"]+/g) ?? [];
  const list = tokens.filter((t) => !t.startsWith("#"));
  let i = 0;
  const fail = (what: string) => {
    throw new NotUnderstood(`LVM metadata: ${what} at token ${i} ("${list[i] ?? "end"}")`);
  };
  const value = (): LvmValue => {
    const t = list[i++];
    if (t === undefined) fail("a value is missing");
    if (t.startsWith('"')) return t.slice(1, -1).replace(/\\(.)/g, "$1");
    if (t === "[") {
      const out: LvmValue[] = [];
      while (list[i] !== "]") {
        if (i >= list.length) fail("a list does not end");
        out.push(value());
        if (list[i] === ",") i++;
      }
      i++;
      return out;
    }
    const n = Number(t);
    if (!Number.isFinite(n)) fail("not a number");
    return n;
  };
  const section = (end: string | undefined): LvmSection => {
    const out: LvmSection = {};
    while (list[i] !== end) {
      if (i >= list.length) fail("a section does not end");
      const key = list[i++];
      if (list[i] === "=") {
        i++;
        out[key] = value();
      } else if (list[i] === "{") {
        i++;
        out[key] = section("}");
        i++;
      } else fail("expected = or {");
    }
    return out;
  };
  return section(undefined);
}

const isSection = (v: LvmValue | undefined): v is LvmSection =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The 32 characters of a PV's UUID as LVM writes it: 6-4-4-4-4-4-6. */
function uuidText(raw: string): string {
  const cut = [6, 4, 4, 4, 4, 4, 6];
  const parts: string[] = [];
  let at = 0;
  for (const n of cut) parts.push(raw.slice(at, at += n));
  return parts.join("-");
}

/** The PV at `start` (a partition or the whole disk) and its linear logical volumes, or null
 * when there is no LVM2 label. */
export async function lvmPhysicalVolume(
  read: ReadAt,
  start: number,
  size: number,
): Promise<PhysicalVolume | null> {
  if (size < 4 * SECTOR) return null;
  const head = await read(start, 4 * SECTOR);
  let label = -1;
  for (let s = 0; s < 4; s++) {
    if (
      ascii(head, s * SECTOR, 8) === "LABELONE" && ascii(head, s * SECTOR + 24, 8) === "LVM2 001"
    ) {
      label = s * SECTOR;
      break;
    }
  }
  if (label < 0) return null;
  const l = head.subarray(label, label + SECTOR);
  if (lvmCrc(l.subarray(20)) !== u32(l, 16)) {
    throw new NotUnderstood("LVM2 label fails its checksum");
  }
  const pvAt = u32(l, 20);
  if (pvAt < 32 || pvAt + 40 > SECTOR) throw new NotUnderstood("LVM2 label has no PV header");
  const uuid = uuidText(ascii(l, pvAt, 32));
  // Data areas, a zero entry, metadata areas, a zero entry.
  let at = pvAt + 40;
  const next = () => {
    if (at + 16 > SECTOR) throw new NotUnderstood("LVM2 PV header's areas overflow its sector");
    const area = [u64(l, at), u64(l, at + 8)];
    at += 16;
    return area;
  };
  while (next()[0] !== 0);
  const mdas: number[][] = [];
  for (let a = next(); a[0] !== 0; a = next()) mdas.push(a);
  if (mdas.length === 0) throw new NotUnderstood("LVM2 PV holds no metadata area");
  const [mdaOffset, mdaSize] = mdas[0];
  if (mdaOffset + mdaSize > size || mdaSize < 2 * SECTOR) {
    throw new NotUnderstood("LVM2 metadata area lies outside the PV");
  }
  const mda = await read(start + mdaOffset, SECTOR);
  if (ascii(mda, 4, 16) !== MDA_MAGIC || lvmCrc(mda.subarray(4)) !== u32(mda, 0)) {
    throw new NotUnderstood("LVM2 metadata area header is not valid");
  }
  // raw_locn[0]: the current metadata, in the circular buffer after the header sector.
  const textAt = u64(mda, 40);
  const textSize = u64(mda, 48);
  const textCrc = u32(mda, 56);
  if (textSize === 0 || textSize > mdaSize - SECTOR || textAt < SECTOR || textAt >= mdaSize) {
    throw new NotUnderstood("LVM2 metadata area holds no current metadata");
  }
  const first = Math.min(textSize, mdaSize - textAt);
  const text = new Uint8Array(textSize);
  text.set(await read(start + mdaOffset + textAt, first));
  if (first < textSize) text.set(await read(start + mdaOffset + SECTOR, textSize - first), first);
  if (lvmCrc(text) !== textCrc) throw new NotUnderstood("LVM2 metadata fails its checksum");
  const nul = text.indexOf(0); // the text may be padded with NULs
  const config = parseLvmText(new TextDecoder().decode(nul < 0 ? text : text.subarray(0, nul)));
  const vgName = Object.keys(config).find((k) => isSection(config[k]));
  const vg = vgName === undefined ? undefined : config[vgName];
  if (!isSection(vg) || typeof vg.extent_size !== "number" || !isSection(vg.physical_volumes)) {
    throw new NotUnderstood("LVM2 metadata names no volume group");
  }
  const extent = vg.extent_size * SECTOR;
  const pvs = vg.physical_volumes;
  const here = Object.keys(pvs).find((k) =>
    isSection(pvs[k]) && (pvs[k] as LvmSection).id === uuid
  );
  const pv = here === undefined ? undefined : pvs[here] as LvmSection;
  if (!pv || typeof pv.pe_start !== "number" || typeof pv.pe_count !== "number") {
    throw new NotUnderstood(`LVM2 volume group ${vgName} does not list this PV (${uuid})`);
  }
  const peStart = pv.pe_start * SECTOR;
  const volumes: LogicalVolume[] = [];
  const skipped: string[] = [];
  const lvs = isSection(vg.logical_volumes) ? vg.logical_volumes : {};
  for (const [lvName, lv] of Object.entries(lvs)) {
    if (!isSection(lv)) continue;
    const name = `${vgName}/${lvName}`;
    const seg = lv.segment1;
    const why = lv.segment_count !== 1
      ? `${lv.segment_count} segments`
      : !isSection(seg) || seg.type !== "striped" || seg.stripe_count !== 1
      ? `a ${isSection(seg) ? seg.type : "missing"} segment`
      : !Array.isArray(seg.stripes) || seg.stripes[0] !== here || typeof seg.stripes[1] !== "number"
      ? "its extents on another PV"
      : typeof seg.extent_count !== "number" || seg.start_extent !== 0
      ? "a segment not at its start"
      : undefined;
    if (why || !isSection(seg)) {
      skipped.push(`${name}: ${why}`);
      continue;
    }
    const pe = (seg.stripes as LvmValue[])[1] as number;
    const count = seg.extent_count as number;
    if (pe < 0 || pe + count > pv.pe_count || peStart + (pe + count) * extent > size) {
      throw new NotUnderstood(`LVM2 ${name} lies outside its PV`);
    }
    volumes.push({ name, start: start + peStart + pe * extent, size: count * extent });
  }
  volumes.sort((a, b) => a.start - b.start);
  return { vg: vgName!, volumes, skipped };
}
