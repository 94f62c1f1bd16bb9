// Parses /etc/fstab text into mount lines that name a partition by a spec
// reimage can find again (LABEL, PARTLABEL, UUID, PARTUUID, or the matching
// /dev/disk/by-* link). Pseudo file systems, swap and noauto lines are skipped.

// How an fstab line (and a manifest mount) names its partition.
export const SPEC_KINDS = ['LABEL', 'PARTLABEL', 'UUID', 'PARTUUID'] as const;
export type SpecKind = (typeof SPEC_KINDS)[number];

// kind LV: a logical volume named by its device path (value `VG/LV`).
export type FstabLine = { kind: SpecKind | 'LV'; value: string; path: string; fstype: string; options: string };

// lvPath: VG/LV for /dev/mapper/VG-LV (a `-` inside a name is doubled) or
// /dev/VG/LV, the paths lvm gives a logical volume; undefined for anything else.
export function lvPath(spec: string): string | undefined {
  const m = /^\/dev\/mapper\/((?:[^-/]|--)+)-((?:[^-/]|--)+)$/.exec(spec);
  if (m) return `${m[1]!.replace(/--/g, '-')}/${m[2]!.replace(/--/g, '-')}`;
  const d = /^\/dev\/([A-Za-z0-9+_.][A-Za-z0-9+_.-]*)\/([A-Za-z0-9+_.][A-Za-z0-9+_.-]*)$/.exec(spec);
  return d && !['disk', 'mapper', 'md', 'block', 'char', 'bus', 'fd', 'net', 'pts', 'shm', 'input', 'snd', 'dri'].includes(d[1]!) ? `${d[1]}/${d[2]}` : undefined;
}

const BY_DIR: Record<string, SpecKind> = {
  'by-label': 'LABEL',
  'by-partlabel': 'PARTLABEL',
  'by-uuid': 'UUID',
  'by-partuuid': 'PARTUUID',
};

// fstab escapes spaces and other characters as \040-style octal.
const unescapeOctal = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseSpec(spec: string): { kind: SpecKind; value: string } | undefined {
  const m = /^(LABEL|PARTLABEL|UUID|PARTUUID)=(.+)$/.exec(spec);
  if (m) return { kind: m[1] as SpecKind, value: m[2]!.replace(/^"(.*)"$/, '$1') };
  const d = /^\/dev\/disk\/(by-label|by-partlabel|by-uuid|by-partuuid)\/(.+)$/.exec(spec);
  if (d) return { kind: BY_DIR[d[1]!]!, value: unescapeOctal(d[2]!.replace(/\\x([0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))) };
  return undefined;
}

export function parseFstab(text: string): FstabLine[] {
  const out: FstabLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [spec, path, fstype, options = 'defaults'] = line.split(/\s+/);
    if (!spec || !path || !fstype || !path.startsWith('/')) continue;
    if (fstype === 'swap' || options.split(',').includes('noauto')) continue;
    const lv = lvPath(spec);
    const parsed = parseSpec(spec) ?? (lv ? { kind: 'LV' as const, value: lv } : undefined);
    if (!parsed) continue;
    out.push({ ...parsed, path: unescapeOctal(path), fstype, options });
  }
  return out;
}

// SUBVOL_OPTIONS: the mount options that choose what of a file system is
// mounted (btrfs subvolumes), and so must be kept in a mount plan; every
// other option is the new system's own business.
const SUBVOL_OPTIONS = /^(subvol|subvolid)=[^,\s]+$/;

// subvolOptions: the subvol=/subvolid= options of an fstab options field, joined ('' when none).
export const subvolOptions = (options: string) =>
  options
    .split(',')
    .filter((o) => SUBVOL_OPTIONS.test(o))
    .join(',');

// parentsFirst: mount lines ordered so that mounting in order builds the tree (/ before /kiosk).
export const parentsFirst = <T extends { path: string }>(lines: readonly T[]): T[] => [...lines].sort((a, b) => a.path.split('/').length - b.path.split('/').length || a.path.localeCompare(b.path));
