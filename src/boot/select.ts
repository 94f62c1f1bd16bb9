// Choosing the target disk in the initramfs by stable identity. Kernel names
// (sda, vda, nvme0n1) move between boots and are refused. Each selector kind
// declares how it matches and whether it names a disk explicitly; a disk that
// holds the bundle, or a removable one, is chosen only when named explicitly.
// No match, or more than one, is refused with every candidate and why.
import { readdir, realpath } from 'node:fs/promises';
import { targetError, usageError } from '../errors.ts';
import { human, parseSize } from '../util/bytes.ts';
import { inspect, type Disk } from '../target/sysfs.ts';
import { hostSys } from '../system/sys.ts';

// What a selector is matched against: every whole disk, and where the /dev tree is (tests give a fake one).
export type Scope = { disks: readonly Disk[]; dev: string };
type Kind = { explicit: boolean; matches: (d: Disk, value: string, scope: Scope) => Promise<boolean> | boolean };

const selectorSize = (s: string): number => {
  const n = parseSize(s);
  if (n === undefined) throw usageError(`size "${s}" in a target selector is not understood: write e.g. size:100G-2T`);
  return n;
};

const wwnOf = (d: Disk) => d.wwn.toLowerCase().replace(/^(naa\.|0x)/, '');

// twins: two disks with one identity (clones with the same serial, no distinct WWN).
// A link named by that identity (by-id) may point at either: udev picks one.
export const twins = (a: Disk, b: Disk): boolean => a.dev !== b.dev && (a.wwn !== '' && b.wwn !== '' ? wwnOf(a) === wwnOf(b) : a.serial !== '' && a.serial === b.serial);

// byLink: a /dev/disk/<dir>/NAME link. by-id names an identity, so a disk
// that shares it with the linked disk matches too (and the choice is refused
// as ambiguous); by-path names a port, which only one disk can sit on.
const byLink = (dir: 'by-id' | 'by-path'): Kind => ({
  explicit: true,
  matches: async (d, v, scope) => {
    const name = v.startsWith('/') ? v.slice(`/dev/disk/${dir}/`.length) : v;
    const node = await realpath(`${scope.dev}/disk/${dir}/${name}`).catch(() => '');
    if (node === d.node) return true;
    const linked = scope.disks.find((x) => x.node === node);
    return dir === 'by-id' && linked !== undefined && twins(d, linked);
  },
});

export const KINDS = {
  serial: { explicit: true, matches: (d, v) => d.serial !== '' && d.serial === v },
  wwn: { explicit: true, matches: (d, v) => d.wwn !== '' && wwnOf(d) === v.toLowerCase().replace(/^(naa\.|0x)/, '') },
  'by-id': byLink('by-id'),
  'by-path': byLink('by-path'),
  // The disk that carries the partition with this GPT PARTUUID: a factory reset
  // names the disk of its recovery partition so (machines cloned from one
  // image have different serials, but each carries that partition).
  partuuid: {
    explicit: true,
    matches: async (d, v, scope) => {
      const node = await realpath(`${scope.dev}/disk/by-partuuid/${v.toLowerCase()}`).catch(() => '');
      return node !== '' && d.partitions.some((p) => node.endsWith(`/${p.name}`));
    },
  },
  model: { explicit: false, matches: (d, v) => d.model === v },
  size: {
    explicit: false,
    matches: (d, v) => {
      const [lo, hi] = v.split('-');
      return d.size >= selectorSize(lo || '0') && (hi === undefined || hi === '' || d.size <= selectorSize(hi));
    },
  },
} satisfies Record<string, Kind>;

export type Selector = { kind: keyof typeof KINDS; value: string; text: string };

// parseSelector: serial:X, wwn:X, model:X, size:MIN-MAX, by-id:NAME, by-path:NAME, or a /dev/disk/by-id|by-path/ link.
export function parseSelector(text: string): Selector {
  const link = /^\/dev\/disk\/(by-id|by-path)\/(.+)$/.exec(text);
  const m = /^([a-z-]+):(.+)$/.exec(text);
  const kind = link ? (link[1] as 'by-id' | 'by-path') : m && m[1]! in KINDS ? (m[1] as keyof typeof KINDS) : undefined;
  const value = link ? text : m?.[2];
  if (kind && value !== undefined) {
    // A link name is one entry of /dev/disk/by-*: `../../sda` would be a kernel name in disguise.
    const name = link ? link[2]! : value;
    if (kind === 'partuuid' && !/^[0-9a-f-]{1,64}$/i.test(value))
      throw usageError(`target selector "${text}" is not a partition GUID: write partuuid: and the PARTUUID, e.g. partuuid:0fc63daf-8483-4772-8e79-3d69d8477de4`);
    if ((kind === 'by-id' || kind === 'by-path') && (name.includes('/') || name === '.' || name === '..')) {
      throw usageError(`target selector "${text}" is not a link name in /dev/disk/${kind}/: give one entry of that directory, e.g. /dev/disk/${kind}/ata-…`);
    }
    return { kind, value, text };
  }
  if (/^(\/dev\/)?(sd|vd|hd|xvd|nvme|mmcblk|loop)/.test(text)) {
    throw usageError(`target "${text}" is a kernel device name, which can change between boots: select the disk by serial:, wwn:, /dev/disk/by-id/… or /dev/disk/by-path/…`);
  }
  throw usageError(`target selector "${text}" is not understood: use serial:X, wwn:X, partuuid:GUID, model:X, size:MIN-MAX, /dev/disk/by-id/… or /dev/disk/by-path/…`);
}

const NOT_DISKS = /^(loop|ram|zram|sr|fd|dm-|md|nbd)/;

// wholeDisks: every whole-disk block device the kernel knows, each once (by device number).
export async function wholeDisks(sys = '/sys'): Promise<Disk[]> {
  const out: Disk[] = [];
  for (const name of (await readdir(`${sys}/block`).catch(() => [] as string[])).sort()) {
    if (NOT_DISKS.test(name)) continue;
    const d = await inspect(`/dev/${name}`, { ...hostSys, sysRoot: sys });
    if (d && !d.isPartition && d.size > 0 && !out.some((x) => x.dev === d.dev)) out.push(d);
  }
  return out;
}

// selectTarget: the one disk every selector matches, under the automatic-choice rules.
export async function selectTarget(texts: string[], bundleDisk: string | undefined, disks: Disk[], dev = '/dev'): Promise<Disk> {
  if (texts.length === 0) throw usageError('no target selector: give rd.reimage.target= or bake "target" into the initrd config');
  const sels = texts.map(parseSelector);
  const explicit = sels.some((s) => KINDS[s.kind].explicit);
  const verdicts: { d: Disk; why?: string }[] = [];
  // One disk reached through two names (two entries with one device number) is one candidate.
  for (const d of disks.filter((d, i) => disks.findIndex((x) => x.dev === d.dev) === i)) {
    let why: string | undefined;
    for (const s of sels) if (!(await KINDS[s.kind].matches(d, s.value, { disks, dev }))) why ??= `does not match ${s.text}`;
    if (!why && !explicit && d.removable) why = 'is removable (never chosen automatically: name it by serial or by-id)';
    if (!why && !explicit && bundleDisk === d.name) why = 'holds the bundle (never chosen automatically: name it by serial or by-id)';
    verdicts.push({ d, ...(why ? { why } : {}) });
  }
  const hits = verdicts.filter((v) => !v.why);
  const list = () => verdicts.map((v) => `${v.d.node} (${v.d.model || '-'}, serial ${v.d.serial || '-'}, ${human(v.d.size)}) ${v.why ?? 'matches'}`).join('; ');
  if (hits.length === 1) return hits[0]!.d;
  if (hits.length === 0) throw targetError(`no disk matches the target selector ${texts.join(' + ')}: ${list() || 'no disks found'}; fix the selector`);
  throw targetError(`${hits.length} disks match the target selector ${texts.join(' + ')}: ${list()}; make the selector unique (serial: or by-id)`);
}
