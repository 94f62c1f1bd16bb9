// One small function per tool verb. Output that tools print as JSON or
// key=value is validated here with zod; callers get typed values.
import { z } from 'zod';
import { run, type Run } from './exec.ts';

const SfdiskPart = z.object({
  node: z.string(),
  start: z.number(),
  size: z.number(),
  type: z.string(),
  uuid: z.string().optional(),
  name: z.string().optional(),
});
const SfdiskJson = z.object({
  partitiontable: z.object({
    label: z.string(),
    id: z.string(),
    device: z.string(),
    sectorsize: z.number().optional(),
    partitions: z.array(SfdiskPart).default([]),
  }),
});
export type SfdiskTable = z.infer<typeof SfdiskJson>['partitiontable'];

// sfdiskJson: the partition table of a device or image file, or undefined when it has none.
export async function sfdiskJson(path: string, r: Run = run): Promise<SfdiskTable | undefined> {
  const out = await r('sfdisk', ['--json', path], { okCodes: [0, 1] });
  if (out.exitCode !== 0 || !out.stdout.trim()) return undefined;
  return SfdiskJson.parse(JSON.parse(out.stdout)).partitiontable;
}

// partNumber: the partition number at the end of an sfdisk node name (img1, loop0p2).
export const partNumber = (node: string) => Number(/(\d+)$/.exec(node)?.[1] ?? NaN);

// blkid -p -o export, as a key/value record (empty when nothing is recognised).
export async function blkidProbe(path: string, range?: { offset: number; size: number }, r: Run = run): Promise<Record<string, string>> {
  const extra = range ? ['--offset', String(range.offset), '--size', String(range.size)] : [];
  // exit 2: nothing found.
  const out = await r('blkid', ['-p', '-o', 'export', ...extra, path], { okCodes: [0, 2] });
  return parseExport(out.stdout);
}

export function parseExport(text: string): Record<string, string> {
  const rec: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) rec[line.slice(0, i)] = line.slice(i + 1).replace(/\\(.)/g, '$1');
  }
  return rec;
}

// debugfsCat: a file's bytes from an ext2/3/4 file system inside an image, without mounting.
export async function debugfsCat(image: string, offset: number, path: string, r: Run = run): Promise<string | undefined> {
  const out = await r('debugfs', ['-R', `cat ${path}`, `${image}?offset=${offset}`], { okCodes: [0] });
  // debugfs prints errors on stderr and exits 0; an empty stdout with an error means "not there".
  if (!out.stdout && /not found|File not found|Bad magic/i.test(out.stderr)) return undefined;
  return out.stdout;
}

// partxUpdate: make the kernel's partitions of DEV match the table on disk.
// Some kernels never parse tables on their own (BLKRRPART is a no-op there).
// The range is explicit: without it `partx -u` (util-linux 2.38) visits
// partition numbers only up to the count of table entries, so MBR logical
// partitions 5 and 6 beside primaries 1 and 2 are never added (256: the
// kernel's most partitions per disk).
export async function partxUpdate(dev: string, r: Run = run): Promise<void> {
  await r('partx', ['-u', '--nr', '1:256', dev], { exit: 'target' });
}

// rereadPartitions: BLKRRPART; returns false when the kernel says the disk is busy.
export async function rereadPartitions(dev: string, r: Run = run): Promise<boolean> {
  const out = await r('blockdev', ['--rereadpt', dev], { okCodes: [0, 1] });
  return out.exitCode === 0;
}

export async function mount(source: string, dir: string, fstype: string, options: string, r: Run = run): Promise<void> {
  await r('mount', ['-t', fstype, '-o', options, source, dir], { exit: 'target' });
}

export async function umount(dir: string, r: Run = run): Promise<void> {
  await r('umount', [dir]);
}

// relocateBackupGpt: move the backup GPT header and entries to the real end of the disk.
export async function relocateBackupGpt(dev: string, r: Run = run): Promise<void> {
  await r('sfdisk', ['--relocate', 'gpt-bak-std', '--no-reread', '--no-tell-kernel', dev], { exit: 'afterWrite' });
}

// growPartition: extend partition N to the end of the free space after it.
export async function growPartition(dev: string, n: number, r: Run = run): Promise<void> {
  await r('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', '-N', String(n), dev], { input: ', +\n', exit: 'afterWrite' });
}

// growExt: check then grow an ext2/3/4 file system to fill its partition.
export async function growExt(node: string, r: Run = run): Promise<void> {
  await r('e2fsck', ['-f', '-p', node], { okCodes: [0, 1], exit: 'afterWrite', timeoutMs: 3600_000 });
  await r('resize2fs', [node], { exit: 'afterWrite', timeoutMs: 3600_000 });
}

// setReadOnly: the kernel's read-only flag of a block device (BLKROSET). A
// file system on a read-only device writes nothing, not even the error record
// ext4 stores in its superblock (on a *mounted read-only* file system too)
// when it meets a corrupt block.
export async function setReadOnly(node: string, ro: boolean, r: Run = run): Promise<void> {
  await r('blockdev', [ro ? '--setro' : '--setrw', node], { exit: 'target' });
}

// flushBuffers: BLKFLSBUF — write out and drop a block device's page cache.
// A partition device caches blocks separately from its disk: after the disk
// was rewritten, a partition that was read before (the old system) would
// otherwise serve stale blocks of the old file system.
export async function flushBuffers(node: string, r: Run = run): Promise<void> {
  await r('blockdev', ['--flushbufs', node], { exit: 'afterWrite' });
}

// blankRange: BLKZEROOUT (zero: reads back as zeros afterwards) or BLKDISCARD
// (discard: contents unspecified afterwards) over [offset, offset + length).
// --force: the write stage itself holds the disk open exclusively.
export async function blankRange(node: string, how: 'zero' | 'discard', offset: number, length: number, r: Run = run): Promise<void> {
  await r('blkdiscard', ['--force', ...(how === 'zero' ? ['--zeroout'] : []), '--offset', String(offset), '--length', String(length), node], { exit: 'writeFailed', timeoutMs: 3600_000 });
}

// syncAll: every file system's dirty data on its disk (sync(1)).
export async function syncAll(r: Run = run): Promise<void> {
  await r('sync', []);
}
