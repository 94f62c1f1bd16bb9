// The old system's own btrfs subvolumes. The old plan comes from the
// manifest (the new image's labels and its subvol= options), but an old
// system may name its subvolumes otherwise (Fedora's root/home against an
// image's @/@home): mounted by the image's names it would be read from the
// wrong place, or not at all. So when the old root is on btrfs, its own
// /etc/fstab (read from the file system's top level, or inside one of its
// subvolumes, with the partition set read-only) gives the subvolume options
// of each mount path it shares with the plan.
import { readMounted } from '../bundle/peek.ts';
import { holdReadOnly } from '../system/tools.ts';
import type { PartIdentity } from '../target/partitions.ts';
import { parseFstab, subvolOptions } from '../util/fstab.ts';
import { findPart, type PlanLine } from './mounts.ts';

// withOldSubvols: PLAN with the subvolume options of the old system's own fstab on its btrfs lines.
export async function withOldSubvols(parts: PartIdentity[], plan: PlanLine[], warn: (line: string) => void): Promise<PlanLine[]> {
  const root = plan.find((l) => l.path === '/');
  const hits = root ? findPart(parts, root.kind, root.value) : [];
  const rp = hits.length === 1 ? hits[0] : undefined;
  if (rp?.fstype !== 'btrfs') return plan;
  const putBack = await holdReadOnly(rp.node);
  const text = await readMounted(rp.node, 'btrfs', '', '/etc/fstab')
    .catch((e: Error) => {
      warn(`old system: /etc/fstab on ${rp.node} cannot be read (${e.message}); its subvolumes are taken to be the image's`);
      return undefined;
    })
    .finally(putBack);
  if (text === undefined) return plan;
  const own = parseFstab(text);
  return plan.map((l) => {
    const line = own.find((x) => x.path === l.path);
    if (!line || findPart(parts, l.kind, l.value)[0]?.fstype !== 'btrfs') return l;
    const { options: _, ...rest } = l;
    const opts = subvolOptions(line.options);
    return opts ? { ...rest, options: opts } : rest;
  });
}
