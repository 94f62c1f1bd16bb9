// An LVM2 physical volume read from its bytes, without device-mapper and
// without root: the label (LABELONE in one of the first four sectors), the PV
// header (where the first metadata area is), the metadata area header (where
// the newest metadata text is in its circular buffer) and the text itself, a
// nested `key = value` / `name { ... }` format (lvm's own, as
// `pvck --dump metadata` prints it). From it: the volume group's name and
// UUID, and each logical volume's byte range inside the PV when it is one
// linear run of extents on this PV (pack peeks the file system there).
import { open } from 'node:fs/promises';

export type LvExtent = { name: string; uuid: string; offset: number; size: number };
export type PvMeta = { vg: string; vgUuid: string; pvCount: number; lvs: LvExtent[]; skipped: string[] };
type Node = { [key: string]: Value };
type Value = string | number | Value[] | Node;

// tokens of lvm's config text: strings, numbers, names, punctuation; `#` starts a comment.
function tokens(text: string): string[] {
  const out: string[] = [];
  const re = /\s+|#[^\n]*|"((?:[^"\\]|\\.)*)"|([-+]?\d+(?:\.\d+)?)|([A-Za-z0-9_.+-]+)|([={}[\],])/gy;
  for (let m = re.exec(text); m && re.lastIndex <= text.length; m = re.exec(text)) {
    if (m[1] !== undefined) out.push(`"${m[1].replace(/\\(.)/g, '$1')}`);
    else if (m[2] !== undefined || m[3] !== undefined || m[4] !== undefined) out.push(m[2] ?? m[3] ?? m[4] ?? '');
    if (re.lastIndex === text.length) break;
  }
  return out;
}

// parseConfig: lvm's config text as nested objects (strings keep no quotes, numbers are numbers).
export function parseConfig(text: string): Node {
  const t = tokens(text);
  let i = 0;
  const value = (): Value => {
    const tok = t[i++] ?? '';
    if (tok === '[') {
      const list: Value[] = [];
      while (i < t.length && t[i] !== ']') {
        if (t[i] === ',') i++;
        else list.push(value());
      }
      i++;
      return list;
    }
    return tok.startsWith('"') ? tok.slice(1) : Number(tok);
  };
  const block = (): Node => {
    const node: Node = {};
    while (i < t.length && t[i] !== '}') {
      const key = t[i++] ?? '';
      if (t[i] === '=') {
        i++;
        node[key] = value();
      } else if (t[i] === '{') {
        i++;
        node[key] = block();
        i++;
      } else throw new Error(`unexpected ${JSON.stringify(t[i] ?? 'end')} after ${JSON.stringify(key)} in LVM metadata`);
    }
    return node;
  };
  return block();
}

const isNode = (v: Value | undefined): v is Node => typeof v === 'object' && !Array.isArray(v);
const num = (v: Value | undefined) => (typeof v === 'number' ? v : NaN);

// vgFromText: the volume group in metadata TEXT (the one top-level block), as seen from the PV with UUID pvUuid (undefined: the first PV).
export function vgFromText(text: string, pvUuid?: string): PvMeta {
  const top = parseConfig(text);
  const vgName = Object.keys(top).find((k) => isNode(top[k]));
  const vg = vgName === undefined ? undefined : top[vgName];
  if (vgName === undefined || !isNode(vg) || typeof vg.id !== 'string') throw new Error('the LVM metadata names no volume group');
  const sectors = 512;
  const extent = num(vg.extent_size) * sectors;
  const pvs = isNode(vg.physical_volumes) ? vg.physical_volumes : {};
  const pvKeys = Object.keys(pvs).filter((k) => isNode(pvs[k]));
  const self = pvKeys.find((k) => {
    const p = pvs[k];
    return isNode(p) && (pvUuid === undefined || String(p.id).replace(/-/g, '') === pvUuid.replace(/-/g, ''));
  });
  const me = self === undefined ? undefined : pvs[self];
  if (self === undefined || !isNode(me)) throw new Error(`the LVM metadata of ${vgName} does not list this physical volume`);
  const peStart = num(me.pe_start) * sectors;
  const lvs: LvExtent[] = [];
  const skipped: string[] = [];
  const all = isNode(vg.logical_volumes) ? vg.logical_volumes : {};
  for (const name of Object.keys(all)) {
    const lv = all[name];
    if (!isNode(lv)) continue;
    const segs = Object.keys(lv)
      .filter((k) => /^segment\d+$/.test(k))
      .map((k) => lv[k])
      .filter(isNode);
    segs.sort((a, b) => num(a.start_extent) - num(b.start_extent));
    let first: number | undefined;
    let next = 0;
    let ok = segs.length > 0;
    for (const s of segs) {
      const stripes = Array.isArray(s.stripes) ? s.stripes : [];
      const linear = s.type === 'striped' && num(s.stripe_count) === 1 && stripes[0] === self && num(s.start_extent) === next;
      const at = num(stripes[1]);
      if (!linear || (first !== undefined && at !== first + next)) ok = false;
      if (first === undefined) first = at;
      next += num(s.extent_count);
    }
    if (!ok || first === undefined || !Number.isFinite(peStart + first * extent + next * extent)) {
      skipped.push(name);
      continue;
    }
    lvs.push({ name, uuid: String(lv.id), offset: peStart + first * extent, size: next * extent });
  }
  return { vg: vgName, vgUuid: vg.id, pvCount: pvKeys.length, lvs, skipped };
}

const LABEL = 'LABELONE';
const MDA_MAGIC = ' LVM2 x[5A%r0N*>';

// readPv: the volume group metadata of the PV at [offset, offset + size) of
// FILE, or undefined when there is no LVM2 label. Rejects when the label is
// there but its metadata cannot be read (named).
export async function readPv(file: string, offset: number, size: number): Promise<PvMeta | undefined> {
  const fh = await open(file, 'r');
  const read = async (at: number, n: number) => {
    if (at < 0 || at + n > size) throw new Error(`LVM metadata points outside the physical volume (byte ${at}, ${n} bytes)`);
    const { buffer, bytesRead } = await fh.read({ buffer: Buffer.alloc(n), position: offset + at });
    return buffer.subarray(0, bytesRead);
  };
  try {
    const head = await read(0, Math.min(2048, size));
    let sector = -1;
    for (let s = 0; s < 4; s++) if (head.toString('latin1', s * 512, s * 512 + 8) === LABEL && head.toString('latin1', s * 512 + 24, s * 512 + 32) === 'LVM2 001') sector = s;
    if (sector < 0) return undefined;
    const base = sector * 512 + head.readUInt32LE(sector * 512 + 20);
    const pvUuid = head.toString('latin1', base, base + 32);
    let p = base + 40;
    while (head.readBigUInt64LE(p) !== 0n) p += 16; // data areas
    p += 16;
    const mdaAt = Number(head.readBigUInt64LE(p));
    if (mdaAt === 0) throw new Error('the physical volume has no metadata area (pvcreate --metadatacopies 0): reimage reads the metadata of this PV only');
    const mda = await read(mdaAt, 512);
    if (mda.toString('latin1', 4, 20) !== MDA_MAGIC) throw new Error(`no LVM metadata area header at byte ${mdaAt} of the physical volume`);
    const start = Number(mda.readBigUInt64LE(24));
    const areaSize = Number(mda.readBigUInt64LE(32));
    const at = Number(mda.readBigUInt64LE(40));
    const len = Number(mda.readBigUInt64LE(48));
    if (len === 0) throw new Error('the LVM metadata area is empty');
    // The text is in a circular buffer after the 512-byte header: it may wrap.
    const first = Math.min(len, areaSize - at);
    const text = Buffer.concat([await read(start + at, first), first < len ? await read(start + 512, len - first) : Buffer.alloc(0)]);
    return vgFromText(text.toString('utf8').replace(/\0+$/, ''), pvUuid);
  } finally {
    await fh.close();
  }
}
