// A disk's layout fingerprint for factory reset (reimage capture records it in
// the signed manifest; every run of such a bundle checks it again before the
// point of no return): the logical sector size, the disk's size and its
// partition table (type, id, each partition's number, start, size, type, GUID,
// name), but not the disk's model or serial, so a recovery image cloned onto
// identical machines still fits each of them. `kept` marks the partitions the
// capture left out (the recovery partition, data): a reset never writes them.
import { z } from 'zod';
import { targetError } from '../errors.ts';
import { hostSys, type Sys } from '../system/sys.ts';
import { comparer, fingerprint, tableDifferences } from './fingerprint.ts';
import type { Disk } from './sysfs.ts';

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const LayoutPartition = z.strictObject({
  number: z.number().int().positive(),
  start: count,
  size: count,
  type: z.string(),
  uuid: z.string().optional(),
  name: z.string().optional(),
  kept: z.boolean(),
});
export type LayoutPartition = z.infer<typeof LayoutPartition>;

export const Layout = z.strictObject({
  size: count,
  sectorSize: z.number().int().positive(),
  label: z.string(),
  id: z.string(),
  partitions: z.array(LayoutPartition).max(128),
});
export type Layout = z.infer<typeof Layout>;

// layoutOf: the disk's layout now; KEPT says which partitions (by number) a reset leaves alone.
export async function layoutOf(d: Disk, kept: ReadonlySet<number>, sys: Sys = hostSys): Promise<Layout> {
  const f = await fingerprint(d, sys);
  if (!f.table) throw targetError(`disk ${d.node} has no partition table: a factory image is captured from a partitioned disk (GPT or MBR)`);
  return {
    size: d.size,
    sectorSize: d.sectorSize,
    label: f.table.label,
    id: f.table.id,
    partitions: f.table.partitions.map((p) => ({ ...p, kept: kept.has(p.number) })),
  };
}

// layoutDifferences: one readable line per field of the layout that differs (kept flags are not compared).
export function layoutDifferences(want: Layout, got: Layout): string[] {
  const out: string[] = [];
  const cmp = comparer(out);
  cmp('disk size', want.size, got.size);
  cmp('logical sector size', want.sectorSize, got.sectorSize);
  const strip = (l: Layout) => ({ label: l.label, id: l.id, partitions: l.partitions.map(({ kept: _, ...p }) => p) });
  tableDifferences(strip(want), strip(got), cmp, out);
  return out;
}

// checkLayout: refuse a target whose layout is not the one the factory image was captured from.
export async function checkLayout(d: Disk, want: Layout, sys: Sys = hostSys): Promise<void> {
  const f = await fingerprint(d, sys);
  const got: Layout = {
    size: d.size,
    sectorSize: d.sectorSize,
    label: f.table?.label ?? 'none',
    id: f.table?.id ?? '',
    partitions: (f.table?.partitions ?? []).map((p) => ({ ...p, kept: false })),
  };
  const diff = layoutDifferences(want, got);
  if (diff.length) {
    throw targetError(
      `target ${d.node} does not have the layout the factory image was captured from (${diff.join('; ')}): the layout changed, so a factory reset could overwrite what is now there; nothing was written. Restore the recorded partition table, or capture a new factory image`,
      { diff },
    );
  }
}
