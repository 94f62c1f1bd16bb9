// Choosing the target disk in the initramfs by stable identity. Kernel names
// (sda, vda, nvme0n1) move between boots and are refused. Each selector kind
// declares how it matches and whether it names a disk explicitly; a disk that
// holds the bundle, or a removable one, is chosen only when named explicitly.
// No match, or more than one, is refused with every candidate and why.
import { readdir, realpath } from 'node:fs/promises';
import { targetError, usageError } from '../errors.ts';
import { human, parseSize } from '../util/bytes.ts';
import { inspect, type Disk } from '../target/sysfs.ts';

type Kind = { explicit: boolean; matches: (d: Disk, value: string) => Promise<boolean> | boolean };

const selectorSize = (s: string): number => {
  const n = parseSize(s);
  if (n === undefined) throw usageError(`size "${s}" in a target selector is not understood: write e.g. size:100G-2T`);
  return n;
};

const byLink = (dir: string): Kind => ({
  explicit: true,
  matches: async (d, v) => {
    const path = v.startsWith('/') ? v : `/dev/disk/${dir}/${v}`;
    return (await realpath(path).catch(() => '')) === d.node;
  },
});

export const KINDS = {
  serial: { explicit: true, matches: (d, v) => d.serial !== '' && d.serial === v },
  wwn: { explicit: true, matches: (d, v) => d.wwn !== '' && d.wwn.toLowerCase().replace(/^naa\./, '') === v.toLowerCase().replace(/^(naa\.|0x)/, '') },
  'by-id': byLink('by-id'),
  'by-path': byLink('by-path'),
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
  const link = /^\/dev\/disk\/(by-id|by-path)\/.+$/.exec(text);
  if (link) return { kind: link[1] as 'by-id' | 'by-path', value: text, text };
  const m = /^([a-z-]+):(.+)$/.exec(text);
  if (m && m[1]! in KINDS) return { kind: m[1] as keyof typeof KINDS, value: m[2]!, text };
  if (/^(\/dev\/)?(sd|vd|hd|xvd|nvme|mmcblk|loop)/.test(text)) {
    throw usageError(`target "${text}" is a kernel device name, which can change between boots: select the disk by serial:, wwn:, /dev/disk/by-id/… or /dev/disk/by-path/…`);
  }
  throw usageError(`target selector "${text}" is not understood: use serial:X, wwn:X, model:X, size:MIN-MAX, /dev/disk/by-id/… or /dev/disk/by-path/…`);
}

const NOT_DISKS = /^(loop|ram|zram|sr|fd|dm-|md|nbd)/;

// wholeDisks: every whole-disk block device the kernel knows.
export async function wholeDisks(sys = '/sys'): Promise<Disk[]> {
  const out: Disk[] = [];
  for (const name of (await readdir(`${sys}/block`).catch(() => [] as string[])).sort()) {
    if (NOT_DISKS.test(name)) continue;
    const d = await inspect(`/dev/${name}`, sys);
    if (d && !d.isPartition && d.size > 0) out.push(d);
  }
  return out;
}

// selectTarget: the one disk every selector matches, under the automatic-choice rules.
export async function selectTarget(texts: string[], bundleDisk: string | undefined, disks: Disk[]): Promise<Disk> {
  if (texts.length === 0) throw usageError('no target selector: give rd.reimage.target= or bake "target" into the initrd config');
  const sels = texts.map(parseSelector);
  const explicit = sels.some((s) => KINDS[s.kind].explicit);
  const verdicts: { d: Disk; why?: string }[] = [];
  for (const d of disks) {
    let why: string | undefined;
    for (const s of sels) if (!(await KINDS[s.kind].matches(d, s.value))) why ??= `does not match ${s.text}`;
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
