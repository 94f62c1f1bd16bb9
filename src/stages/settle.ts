// settle: the backup GPT moved to the real end of a disk larger than the
// image, optionally the last partition and its file system grown (--grow),
// the kept partitions added back to the table (at their old place, with
// their old identity), then the partition table reread with bounded retries until the kernel's
// partitions match and their nodes exist. Returns the new partitions' identities.
import { ReimageError } from '../errors.ts';
import { flushBuffers, growExt, growPartition, partNumber, relocateBackupGpt, sfdiskJson } from '../system/tools.ts';
import { isExtended } from '../image/table.ts';
import { identify, settle as settleParts, type PartIdentity } from '../target/partitions.ts';
import type { Run } from './context.ts';
import type { Passed } from './phase.ts';
import { addKept } from './kept.ts';
import { kitEntry } from './bootkit.ts';
import { testCut } from '../util/testcut.ts';

export async function settle(run: Run, p: Passed): Promise<PartIdentity[]> {
  const { log, o, sys } = run;
  const { disk } = p;
  const m = p.bundle.manifest;
  // Power-cut tests: the image's first MiB is on the disk, settle has not begun (util/testcut.ts).
  testCut('settle', (l) => log.warn(l));
  if (m.table.label === 'gpt' && disk.size > m.raw.size) {
    await log.step('move the backup GPT to the end of the disk', () => relocateBackupGpt(disk.node, sys));
  }
  // The kept partitions back in the table before the kernel is told (stages/kept.ts).
  await addKept(disk, p.bundle, p.kept, log, sys);
  // A boot kit's firmware entry follows its FAT partition's number in this table (stages/bootkit.ts).
  if (p.kit?.uefi) await kitEntry(run, disk.node, p.kit.uefi);
  const last = [...m.table.partitions].sort((a, b) => b.start - a.start)[0];
  if (o.grow && last) await log.step(`grow partition ${last.number} to the end of the disk`, () => growPartition(disk.node, last.number, sys));
  const onDisk = await sfdiskJson(disk.node, sys);
  if (!onDisk) throw new ReimageError('afterWrite', `${disk.node} shows no partition table after writing: the write did not land; run reimage again`);
  const expected = onDisk.partitions.map((p) => ({ number: partNumber(p.node), start: p.start, size: p.size, ...(onDisk.label === 'dos' && isExtended(p.type) ? { container: true } : {}) }));
  for (const part of m.table.partitions) {
    const e = expected.find((x) => x.number === part.number);
    if (!e || e.start !== part.start || (e.size !== part.size && !(o.grow && part === last))) {
      throw new ReimageError('afterWrite', `partition ${part.number} on ${disk.node} does not match the manifest after writing: run reimage again`);
    }
  }
  const nodes = await settleParts(disk, expected, log, { exit: 'afterWrite' }, sys);
  await Promise.all([disk.node, ...nodes.values()].map((node) => flushBuffers(node, sys)));
  if (o.grow && last) {
    const node = nodes.get(last.number) ?? `partition ${last.number}`;
    if (last.fs.type?.startsWith('ext')) await log.step(`grow the ${last.fs.type} file system on ${node}`, () => growExt(node, sys));
    else log.warn(`--grow: partition ${last.number} grew, but its file system (${last.fs.type ?? 'none'}) is not grown by reimage; grow it from the new system`);
  }
  return identify(nodes, sys);
}
