// Block-device and partition-table verbs: sfdisk, blkid, partx, blockdev,
// blkdiscard. JSON and key=value output is validated here with zod; callers
// get typed values.
import { z } from 'zod';
import { runVia, type Via } from './exec.ts';

const SfdiskPart = z.object({
  node: z.string(),
  start: z.number(),
  size: z.number(),
  type: z.string(),
  uuid: z.string().optional(),
  name: z.string().optional(),
  attrs: z.string().optional(),
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

// sfdiskJson: the partition table of a device or image file, or undefined when it has none (exit default: environment).
export async function sfdiskJson(path: string, v: Via = {}): Promise<SfdiskTable | undefined> {
  const out = await runVia(v)('sfdisk', ['--json', path], { okCodes: [0, 1], ...(v.exit ? { exit: v.exit } : {}) });
  if (out.exitCode !== 0 || !out.stdout.trim()) return undefined;
  return SfdiskJson.parse(JSON.parse(out.stdout)).partitiontable;
}

// partNumber: the partition number at the end of an sfdisk node name (img1, loop0p2).
export const partNumber = (node: string) => Number(/(\d+)$/.exec(node)?.[1] ?? NaN);

// blkidProbe: blkid -p -o export, as a key/value record (empty when nothing is recognised; exit default: environment).
export async function blkidProbe(path: string, range?: { offset: number; size: number }, v: Via = {}): Promise<Record<string, string>> {
  const extra = range ? ['--offset', String(range.offset), '--size', String(range.size)] : [];
  // exit 2: nothing found.
  const out = await runVia(v)('blkid', ['-p', '-o', 'export', ...extra, path], { okCodes: [0, 2], ...(v.exit ? { exit: v.exit } : {}) });
  return parseExport(out.stdout);
}

// parseExport: KEY=value lines (blkid -o export) into a record, backslash escapes undone.
export function parseExport(text: string): Record<string, string> {
  const rec: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) rec[line.slice(0, i)] = line.slice(i + 1).replace(/\\(.)/g, '$1');
  }
  return rec;
}

// writeTable: sfdisk reads a script (`label: gpt` …) and writes that table onto PATH (exit default: environment).
export async function writeTable(path: string, script: string, v: Via = {}): Promise<void> {
  await runVia(v)('sfdisk', ['-q', path], { input: script, exit: v.exit ?? 'environment' });
}

// dumpTable: the table of PATH as an sfdisk script (sfdisk --dump), to be edited and written back whole (exit default: afterWrite).
export async function dumpTable(path: string, v: Via = {}): Promise<string> {
  return (await runVia(v)('sfdisk', ['--dump', path], { exit: v.exit ?? 'afterWrite' })).stdout;
}

// rewriteTable: SCRIPT written as PATH's whole table in one sfdisk run, the kernel not told (settle rereads). Exit default: afterWrite.
export async function rewriteTable(path: string, script: string, v: Via = {}): Promise<void> {
  await runVia(v)('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', path], { input: script, exit: v.exit ?? 'afterWrite' });
}

// partxUpdate: make the kernel's partitions of DEV match the table on disk.
// Some kernels never parse tables on their own (BLKRRPART is a no-op there). Exit default: target.
export async function partxUpdate(dev: string, v: Via = {}): Promise<void> {
  await runVia(v)('partx', ['-u', dev], { exit: v.exit ?? 'target' });
}

// partxAdd: add the partitions of DEV's table the kernel lacks. util-linux
// 2.38's `partx -u` adds no logical partitions of an MBR table (it exits 0
// without them); `partx -a` does. Exit 1 (some partitions were there already)
// is no failure. Exit default: target.
export async function partxAdd(dev: string, v: Via = {}): Promise<void> {
  await runVia(v)('partx', ['-a', dev], { okCodes: [0, 1], exit: v.exit ?? 'target' });
}

// addPartition: BLKPG-add partition NUMBER of DEV at START for SIZE, both in
// 512-byte units (util-linux addpart). Exit default: target.
export async function addPartition(dev: string, number: number, start: number, size: number, v: Via = {}): Promise<void> {
  await runVia(v)('addpart', [dev, String(number), String(start), String(size)], { exit: v.exit ?? 'target' });
}

// rereadPartitions: BLKRRPART; returns false when the kernel says the disk is busy (exit default: environment).
export async function rereadPartitions(dev: string, v: Via = {}): Promise<boolean> {
  const out = await runVia(v)('blockdev', ['--rereadpt', dev], { okCodes: [0, 1], ...(v.exit ? { exit: v.exit } : {}) });
  return out.exitCode === 0;
}

// relocateBackupGpt: move the backup GPT header and entries to the real end of the disk (exit default: afterWrite).
export async function relocateBackupGpt(dev: string, v: Via = {}): Promise<void> {
  await runVia(v)('sfdisk', ['--relocate', 'gpt-bak-std', '--no-reread', '--no-tell-kernel', dev], { exit: v.exit ?? 'afterWrite' });
}

// growPartition: extend partition N to the end of the free space after it (exit default: afterWrite).
export async function growPartition(dev: string, n: number, v: Via = {}): Promise<void> {
  await runVia(v)('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', '-N', String(n), dev], { input: ', +\n', exit: v.exit ?? 'afterWrite' });
}

// setReadOnly: the kernel's read-only flag of a block device (BLKROSET). A
// file system on a read-only device writes nothing, not even the error record
// ext4 stores in its superblock (on a *mounted read-only* file system too)
// when it meets a corrupt block. Exit default: target.
export async function setReadOnly(node: string, ro: boolean, v: Via = {}): Promise<void> {
  await runVia(v)('blockdev', [ro ? '--setro' : '--setrw', node], { exit: v.exit ?? 'target' });
}

// holdReadOnly: set NODE's read-only flag, and return what puts it back as it
// was: a device that was read-only before (an operator's `blockdev --setro`)
// stays read-only afterwards. Exit default: target.
export async function holdReadOnly(node: string, v: Via = {}): Promise<() => Promise<void>> {
  const was = (await runVia(v)('blockdev', ['--getro', node], { exit: v.exit ?? 'target' })).stdout.trim() === '1';
  if (was) return async () => {};
  await setReadOnly(node, true, v);
  return () => setReadOnly(node, false, v);
}

// flushBuffers: BLKFLSBUF — write out and drop a block device's page cache.
// A partition device caches blocks separately from its disk: after the disk
// was rewritten, a partition that was read before (the old system) would
// otherwise serve stale blocks of the old file system. Exit default: afterWrite.
export async function flushBuffers(node: string, v: Via = {}): Promise<void> {
  await runVia(v)('blockdev', ['--flushbufs', node], { exit: v.exit ?? 'afterWrite' });
}

// blankRange: BLKZEROOUT (zero: reads back as zeros afterwards) or BLKDISCARD
// (discard: contents unspecified afterwards) over [offset, offset + length).
// --force: the write stage itself holds the disk open exclusively. Exit default: writeFailed.
export async function blankRange(node: string, how: 'zero' | 'discard', offset: number, length: number, v: Via = {}): Promise<void> {
  await runVia(v)('blkdiscard', ['--force', ...(how === 'zero' ? ['--zeroout'] : []), '--offset', String(offset), '--length', String(length), node], {
    exit: v.exit ?? 'writeFailed',
    timeoutMs: 3600_000,
  });
}

// deletePartitions: remove the partitions numbered NUMBERS from the table of PATH (a device or image file; exit default: environment).
export async function deletePartitions(path: string, numbers: readonly number[], v: Via = {}): Promise<void> {
  await runVia(v)('sfdisk', ['-q', '--no-reread', '--delete', path, ...numbers.map(String)], { exit: v.exit ?? 'environment' });
}
