// Reads a raw disk image's layout without mounting it: the partition table
// (sfdisk; a table made for 4096-byte sectors — GPT or MBR — is parsed from
// the image's bytes, since sfdisk reads a file as 512-byte sectors), each partition's file system
// (blkid at an offset), and the mount plan (from --mount SPEC:PATH, or from
// the image's own /etc/fstab).
import { open } from 'node:fs/promises';
import { bundleError, usageError } from '../errors.ts';
import { blkidProbe, partNumber, sfdiskJson, type SfdiskTable } from '../system/tools.ts';
import { lvPath, parentsFirst, parseFstab, parseSpec, subvolOptions } from '../util/fstab.ts';
import { readPv } from '../image/lvm.ts';
import { canPeek, peek } from './peek.ts';
import { isExtended, parseTable, type ImageTable } from '../image/table.ts';
import { container } from '../util/containers.ts';
import { readExtInfo } from '../image/extfs.ts';
import { duplicateMountPath, normaliseMountPath } from '../util/mountpath.ts';
import type { Mount, Partition, SpecKind, Table } from './manifest.ts';

// fromBytes: the image's table parsed from its own bytes as made for SECTOR-byte
// sectors (a GPT is also looked for at the other size), EBRs read where the
// chain leads; undefined when it does not parse.
async function fromBytes(image: string, sector: number): Promise<ImageTable | undefined> {
  const fh = await open(image, 'r');
  try {
    const ebrs = new Map<number, Buffer>();
    for (let n = 1 << 20; n <= 16 << 20; ) {
      const { buffer, bytesRead } = await fh.read({ buffer: Buffer.alloc(n), position: 0 });
      const r = parseTable(buffer.subarray(0, bytesRead), sector, ebrs);
      if ('table' in r) return r.table;
      if ('needAt' in r && !ebrs.has(r.needAt) && ebrs.size < 128) {
        const e = await fh.read({ buffer: Buffer.alloc(512), position: r.needAt });
        ebrs.set(r.needAt, e.buffer.subarray(0, e.bytesRead));
        continue;
      }
      if (!('need' in r) || r.need <= n || bytesRead < n) return undefined;
      n = r.need;
    }
    return undefined;
  } finally {
    await fh.close();
  }
}

// asSfdisk: a table parsed here in the shape sfdisk --json gives.
const asSfdisk = (image: string, t: ImageTable): SfdiskTable => ({
  label: t.label,
  id: t.id,
  device: image,
  sectorsize: t.sectorSize,
  partitions: t.partitions.map((p) => ({
    node: `${image}${p.number}`,
    start: p.start,
    size: p.size,
    type: t.label === 'gpt' ? p.type.toUpperCase() : p.type,
    ...(p.uuid ? { uuid: p.uuid } : {}),
    ...(p.name ? { name: p.name } : {}),
  })),
});

// fileSystems: how many data partitions of T hold a file system blkid knows, read as SECTOR-byte sectors.
async function fileSystems(image: string, t: ImageTable | undefined, sector: number): Promise<number> {
  let n = 0;
  for (const p of t?.partitions ?? []) {
    if (isExtended(p.type)) continue;
    if ((await blkidProbe(image, { offset: p.start * sector, size: p.size * sector })).TYPE) n++;
  }
  return n;
}

// ownTable: the table as sfdisk reads a file (512-byte sectors) unless the
// image is made for 4096-byte sectors. sfdisk cannot tell from a file: a
// GPT says so (its header at byte 4096); an MBR does not, so it is read both
// ways and taken as 4Kn when more of its partitions start with a file system
// at 4096-byte offsets than at 512.
async function ownTable(image: string): Promise<SfdiskTable | undefined> {
  const at4k = await fromBytes(image, 4096);
  if (at4k?.label === 'gpt' && at4k.sectorSize === 4096) return asSfdisk(image, at4k);
  if (at4k?.label === 'dos') {
    const found = await fileSystems(image, at4k, 4096);
    if (found > 0 && found > (await fileSystems(image, await fromBytes(image, 512), 512))) return asSfdisk(image, at4k);
  }
  return sfdiskJson(image);
}

export async function readTable(image: string): Promise<Table> {
  const t = await ownTable(image);
  if (!t) throw bundleError(`${image} has no partition table: pass a whole-disk image (GPT or MBR), not a file system image`);
  if (t.label !== 'gpt' && t.label !== 'dos') throw bundleError(`${image} has a "${t.label}" partition table: only gpt and dos are supported`);
  const ss = t.sectorsize ?? 512;
  const partitions: Partition[] = [];
  for (const p of t.partitions) {
    const fs = await blkidProbe(image, { offset: p.start * ss, size: p.size * ss });
    const ext = fs.TYPE?.startsWith('ext') ? await readExtInfo(image, p.start * ss) : undefined;
    const lvm = fs.TYPE === 'LVM2_member' ? await readLvm(image, partNumber(p.node), p.start * ss, p.size * ss) : undefined;
    partitions.push({
      number: partNumber(p.node),
      start: p.start,
      size: p.size,
      type: p.type,
      ...(p.uuid ? { uuid: p.uuid.toLowerCase() } : {}),
      ...(p.name ? { name: p.name } : {}),
      fs: { ...(fs.TYPE ? { type: fs.TYPE } : {}), ...(fs.LABEL ? { label: fs.LABEL } : {}), ...(fs.UUID ? { uuid: fs.UUID } : {}), ...ext },
      ...(lvm ? { lvm } : {}),
    });
  }
  return { label: t.label, id: t.id.toLowerCase(), sectorSize: ss, partitions };
}

// readLvm: the volume group on the LVM physical volume at [offset, offset + size) of IMAGE, with each logical volume's file system.
async function readLvm(image: string, number: number, offset: number, size: number): Promise<Partition['lvm']> {
  const pv = await readPv(image, offset, size).catch((e: Error) => {
    throw bundleError(`partition ${number} of ${image} is an LVM physical volume whose metadata cannot be read (${e.message}): check the image with pvck`);
  });
  if (!pv) return undefined;
  if (pv.pvCount !== 1)
    throw bundleError(
      `partition ${number} of ${image} is one of ${pv.pvCount} physical volumes of volume group ${pv.vg}: reimage supports a volume group on a single partition of the image; pack an image whose volume group has one physical volume`,
    );
  const lvs = [];
  for (const lv of pv.lvs) {
    const fs = await blkidProbe(image, { offset: offset + lv.offset, size: lv.size });
    const ext = fs.TYPE?.startsWith('ext') ? await readExtInfo(image, offset + lv.offset) : undefined;
    lvs.push({ ...lv, fs: { ...(fs.TYPE ? { type: fs.TYPE } : {}), ...(fs.LABEL ? { label: fs.LABEL } : {}), ...(fs.UUID ? { uuid: fs.UUID } : {}), ...ext } });
  }
  return { vg: pv.vg, uuid: pv.vgUuid, lvs };
}

type Lv = NonNullable<Partition['lvm']>['lvs'][number];
// A place a mount can name: a partition's own file system, or a logical volume on it.
type Place = { p: Partition; lv?: Lv };

// places: every partition, then every logical volume of every LVM physical volume.
const places = (table: Table): Place[] => [...table.partitions.map((p) => ({ p })), ...table.partitions.flatMap((p) => (p.lvm?.lvs ?? []).map((lv) => ({ p, lv })))];

// placeMatches: whether a partition or logical volume carries the identity an fstab spec (or VG/LV path) names.
function placeMatches({ p, lv }: Place, kind: SpecKind | 'LV', value: string): boolean {
  if (kind === 'LV') return !!lv && `${p.lvm?.vg}/${lv.name}` === value;
  if (!lv) return specMatches(p, kind, value);
  if (kind === 'LABEL') return lv.fs.label === value;
  return kind === 'UUID' && lv.fs.uuid?.toLowerCase() === value.toLowerCase();
}

// unusable: why a container partition (LUKS, an LVM PV) cannot hold the root or a mount, or undefined.
const unusable = (p: Partition) => {
  const c = container(p.fs.type);
  return c && `partition ${p.number}${p.fs.label ? ` (LABEL=${p.fs.label})` : ''} is ${c.what}, and ${c.why}: pack an image whose root and data are file systems on plain partitions`;
};

// specMatches: whether a partition carries the identity an fstab spec names.
export function specMatches(p: Partition, kind: SpecKind, value: string): boolean {
  const v = value.toLowerCase();
  switch (kind) {
    case 'LABEL':
      return p.fs.label === value;
    case 'PARTLABEL':
      return p.name === value;
    case 'UUID':
      return p.fs.uuid?.toLowerCase() === v;
    case 'PARTUUID':
      return p.uuid?.toLowerCase() === v;
  }
}

function toMount(table: Table, kind: SpecKind | 'LV', value: string, raw: string, fstype: string | undefined, from: string, options = ''): Mount {
  // The manifest takes only normalised mount paths: `//a/./b/` becomes `/a/b`; `..` is refused.
  const path = normaliseMountPath(raw);
  const named = kind === 'LV' ? `/dev/${value}` : `${kind}=${value}`;
  if (path === undefined) throw bundleError(`${from} mount path ${JSON.stringify(raw)} for ${named} is not an absolute path without ".." or NUL; give the plan with --mount SPEC:/clean/path`);
  const hits = places(table).filter((x) => placeMatches(x, kind, value));
  if (hits.length !== 1) {
    const why = hits.length === 0 ? 'matches no partition or logical volume of the image' : `matches ${hits.length} partitions or logical volumes of the image`;
    throw bundleError(`${from} ${named} for ${path} ${why}; give the mount plan with --mount SPEC:PATH`);
  }
  const { p, lv } = hits[0]!;
  const why = lv ? undefined : unusable(p);
  if (why) throw bundleError(`${from} ${named} for ${path}: ${why}`);
  const fs = lv ? lv.fs : p.fs;
  const where = lv ? `logical volume ${p.lvm?.vg}/${lv.name} on partition ${p.number}` : `partition ${p.number}`;
  const type = fs.type ?? fstype;
  if (!type || type === 'auto') throw bundleError(`${from} ${named} for ${path}: ${where} has no recognisable file system`);
  const keep = type === 'btrfs' ? subvolOptions(options) : '';
  // A logical volume named by its path is found after the write by its file system's UUID (the VG's name may clash).
  let spec: Mount['spec'];
  if (kind !== 'LV') spec = { kind, value };
  else if (fs.uuid) spec = { kind: 'UUID', value: fs.uuid };
  else throw bundleError(`${from} ${named} for ${path}: ${where} has a file system without a UUID; give it one (tune2fs -U random, xfs_admin -U generate)`);
  return { path, spec, partition: p.number, ...(lv ? { lv: lv.name } : {}), fstype: type, ...(keep ? { options: keep } : {}) };
}

// mountsFromFlags: the plan given as --mount LABEL=root:/ --mount PARTLABEL=data:/kiosk.
export function mountsFromFlags(table: Table, flags: readonly string[]): Mount[] {
  return sortMounts(
    flags.map((f) => {
      const m = /^(.+?):(\/.*)$/.exec(f);
      const lv = m ? lvPath(m[1]!) : undefined;
      const spec = m ? (parseSpec(m[1]!) ?? (lv ? { kind: 'LV' as const, value: lv } : undefined)) : undefined;
      if (!m || !spec) throw usageError(`--mount "${f}" is not SPEC:PATH; write e.g. --mount LABEL=root:/, --mount PARTUUID=…:/data or --mount /dev/VG/LV:/`);
      return toMount(table, spec.kind, spec.value, m[2]!, undefined, '--mount');
    }),
  );
}

// mountsFromFstab: find the partition that holds /etc/fstab (the root) and read the plan from it.
export async function mountsFromFstab(image: string, table: Table): Promise<Mount[]> {
  for (const { p, lv } of places(table)) {
    const fs = lv ? lv.fs : p.fs;
    if (!canPeek(fs.type)) continue;
    const ss = table.sectorSize;
    const offset = p.start * ss + (lv?.offset ?? 0);
    const where = lv ? `logical volume ${p.lvm?.vg}/${lv.name} (partition ${p.number})` : `partition ${p.number}`;
    const text = await peek(image, { number: p.number, offset, size: lv?.size ?? p.size * ss, fstype: fs.type ?? '' }, '/etc/fstab');
    if (text === undefined) continue;
    const lines = parseFstab(text);
    const mounts = lines.map((l) => toMount(table, l.kind, l.value, l.path, l.fstype, `/etc/fstab in ${where}:`, l.options));
    const root = mounts.find((m) => m.path === '/');
    if (!root) throw bundleError(`/etc/fstab in ${where} of ${image} has no / line reimage can resolve; give the mount plan with --mount SPEC:PATH`);
    return sortMounts(mounts);
  }
  const held = table.partitions
    .filter((p) => !p.lvm)
    .map(unusable)
    .find(Boolean);
  if (held) throw bundleError(`${image} cannot be packed: ${held}`);
  throw bundleError(`no partition of ${image} has /etc/fstab on an ext2/3/4, XFS or btrfs file system; give the mount plan with --mount SPEC:PATH (e.g. --mount LABEL=root:/)`);
}

// Parents before children, so mounting in order builds the tree.
const sortMounts = (m: Mount[]) => {
  if (!m.some((x) => x.path === '/')) throw usageError('the mount plan has no / (root) entry; add --mount SPEC:/');
  const dup = duplicateMountPath(m.map((x) => x.path));
  if (dup) throw usageError(`the mount plan names ${dup} twice: give one partition per mount point`);
  return parentsFirst(m);
};
