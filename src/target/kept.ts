// Kept partitions: partitions of the target the reimage never writes (a
// recovery partition, /home, the partition that holds the bundle). A selector
// names them on the old GPT by PARTLABEL=name, PARTUUID=uuid or TYPE=guid (the
// GPT partition type). PARTLABEL and PARTUUID must match exactly one
// partition; TYPE matches every partition of that type, at least one. A
// selector that matches nothing is a refusal (a factory reset without its
// recovery partition must not go on). Only GPT on both sides: an MBR has no
// partition names or UUIDs, four primary slots and logical partitions chained
// through the disk, so an MBR disk or image with kept partitions is refused.
// Everything here is pure: the table comes from sfdisk (system/disk.ts).
import { targetError } from '../errors.ts';
import type { SfdiskTable } from '../system/disk.ts';
import { partNumber } from '../system/disk.ts';

// A parsed selector (bundle/keepspec.ts validates the text).
export type Selector = { kind: 'PARTLABEL' | 'PARTUUID' | 'TYPE'; value: string; text: string };

// The image's table as the manifest records it (start and size in its sectors).
type Table = { label: string; sectorSize: number; partitions: readonly { number: number; start: number; size: number; name?: string; uuid?: string }[] };

// One kept partition, as on the old table (start and size in sectors) and in bytes.
export type KeptPart = {
  number: number;
  node: string;
  start: number;
  size: number;
  type: string;
  uuid: string;
  name?: string;
  attrs?: string;
  // [from, to) on the disk.
  bytes: [number, number];
  // Why it is kept: the selectors that named it, or "holds the bundle".
  why: string[];
};

// The reason a partition is kept when no selector named it.
export const HOLDS_BUNDLE = 'holds the bundle';

const same = (a: string | undefined, b: string) => (a ?? '').toLowerCase() === b.toLowerCase();

// resolveKept: the partitions of OLD that SELECTORS (and the partition numbered BUNDLEPART) name, or the refusal.
export function resolveKept(old: SfdiskTable | undefined, selectors: readonly Selector[], node: string, bundlePart?: number): KeptPart[] {
  if (!selectors.length && bundlePart === undefined) return [];
  const asked = selectors.map((s) => s.text).join(', ') || 'the partition that holds the bundle';
  if (!old || !old.partitions.length) throw targetError(`${node} has no partition table, so there is nothing to keep (${asked}): remove the keep selectors, or check the target`);
  if (old.label !== 'gpt') {
    throw targetError(
      `${node} has an MBR partition table: keeping partitions (${asked}) needs a GPT (an MBR has no partition names or UUIDs and chains its logical partitions through the disk); reimage without keeping, or convert the disk to GPT`,
    );
  }
  const ss = old.sectorsize ?? 512;
  const kept = new Map<number, KeptPart>();
  const add = (p: SfdiskTable['partitions'][number], why: string) => {
    const number = partNumber(p.node);
    const k = kept.get(number) ?? {
      number,
      node: p.node,
      start: p.start,
      size: p.size,
      type: p.type,
      uuid: p.uuid ?? '',
      ...(p.name ? { name: p.name } : {}),
      ...(p.attrs ? { attrs: p.attrs } : {}),
      bytes: [p.start * ss, (p.start + p.size) * ss] as [number, number],
      why: [],
    };
    k.why.push(why);
    kept.set(number, k);
  };
  for (const s of selectors) {
    const hits = old.partitions.filter((p) => (s.kind === 'PARTLABEL' ? p.name === s.value : s.kind === 'PARTUUID' ? same(p.uuid, s.value) : same(p.type, s.value)));
    if (!hits.length) throw targetError(`keep ${s.text}: no partition of ${node} matches it, so it cannot be kept: check the selector (sfdisk --json ${node}), or remove it`);
    if (hits.length > 1 && s.kind !== 'TYPE') throw targetError(`keep ${s.text}: ${hits.map((p) => p.node).join(' and ')} all match it: name the one to keep by PARTUUID=`);
    for (const p of hits) add(p, s.text);
  }
  if (bundlePart !== undefined) {
    const p = old.partitions.find((q) => partNumber(q.node) === bundlePart);
    if (!p) throw targetError(`the bundle is on partition ${bundlePart} of ${node}, which its partition table does not list: the partition cannot be kept; put the bundle on another disk`);
    add(p, HOLDS_BUNDLE);
  }
  return [...kept.values()].sort((a, b) => a.start - b.start);
}

// keptOverlap: why the image cannot be written around KEPT, or undefined:
// an image partition (or its table) overlapping a kept one, data the image
// maps (MAPPED, byte ranges; the whole image without a block map) landing in
// one, or the image's partition table sharing a PARTUUID with one.
export function keptOverlap(kept: readonly KeptPart[], table: Table, mapped: readonly [number, number][]): string | undefined {
  if (!kept.length) return undefined;
  const names = kept.map((k) => k.node).join(', ');
  if (table.label !== 'gpt') return `the image has an MBR partition table: keeping partitions (${names}) needs a GPT image`;
  const ss = table.sectorSize;
  const hit = (a: [number, number], b: [number, number]) => a[0] < b[1] && b[0] < a[1];
  const desc = (k: KeptPart) => `kept partition ${k.node} (${k.name ? `"${k.name}", ` : ''}bytes ${k.bytes[0]}-${k.bytes[1] - 1})`;
  for (const k of kept) {
    for (const p of table.partitions) {
      const r: [number, number] = [p.start * ss, (p.start + p.size) * ss];
      if (hit(r, k.bytes)) return `partition ${p.number} of the image${p.name ? ` ("${p.name}")` : ''} (bytes ${r[0]}-${r[1] - 1}) overlaps ${desc(k)}`;
      if (p.name && k.name === p.name) return `partition ${p.number} of the image is named "${p.name}" like ${desc(k)}: PARTLABEL=${p.name} would name two partitions; rename one of them`;
      if (p.uuid && same(p.uuid, k.uuid)) return `partition ${p.number} of the image has the PARTUUID ${k.uuid} of ${desc(k)}: two partitions with one PARTUUID cannot both be on the disk`;
    }
    // The image's primary GPT (header and entries) lies before its first partition; no kept partition can be there on a valid old GPT.
    const m = mapped.find((r) => hit(r, k.bytes));
    if (m) return `the image's data at bytes ${Math.max(m[0], k.bytes[0])}-${Math.min(m[1], k.bytes[1]) - 1} would land in ${desc(k)}`;
  }
  return undefined;
}

// keptNumbers: each kept partition's number in the new table: its own number when the image's table leaves it free, else the lowest number nothing else uses.
export function keptNumbers(kept: readonly KeptPart[], table: Table): Map<KeptPart, number> {
  const used = new Set(table.partitions.map((p) => p.number));
  const out = new Map<KeptPart, number>();
  for (const k of kept) if (!used.has(k.number)) used.add(k.number), out.set(k, k.number);
  for (const k of kept) {
    if (out.has(k)) continue;
    let n = 1;
    while (used.has(n)) n++;
    used.add(n);
    out.set(k, n);
  }
  return out;
}

// keptLine: K as one line of an sfdisk script, numbered N on DEVICE (sfdisk takes the number from the node name).
export function keptLine(k: KeptPart, device: string, n: number): string {
  const node = /\d$/.test(device) ? `${device}p${n}` : `${device}${n}`;
  const q = (s: string) => `"${s.replace(/"/g, '')}"`;
  return `${node} : start=${k.start}, size=${k.size}, type=${k.type}, uuid=${k.uuid}${k.name ? `, name=${q(k.name)}` : ''}${k.attrs ? `, attrs=${q(k.attrs)}` : ''}`;
}

// clip: [from, to) without the KEPT byte ranges, as the pieces that may be written.
export function clip(from: number, to: number, kept: readonly (readonly [number, number])[]): [number, number][] {
  let pieces: [number, number][] = [[from, to]];
  for (const [a, b] of kept) {
    pieces = pieces.flatMap(([x, y]): [number, number][] =>
      b <= x || a >= y
        ? [[x, y]]
        : (
            [
              [x, Math.min(a, y)],
              [Math.max(b, x), y],
            ] as [number, number][]
          ).filter(([s, e]) => e > s),
    );
  }
  return pieces;
}
