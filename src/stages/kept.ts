// The flow's side of kept partitions (target/kept.ts): which partitions of
// the target the run keeps (the bundle's `keep`, the policy's or --keep, and
// the partition the bundle was read from), checked against the image before
// the point of no return; and after the write, the kept entries put back into
// the image's table. The order makes a power cut harmless to them: their
// bytes are never written, the image's table lands first (the first MiB,
// written last by the write stage), then one sfdisk run rewrites that table
// with the kept entries added at their old place, with their old type,
// PARTUUID, name and attributes, before the kernel is told (settle).
import { open, rm, stat } from 'node:fs/promises';
import { extents } from '../bmap/format.ts';
import type { Bundle } from '../bundle/read.ts';
import { ReimageError, targetError } from '../errors.ts';
import { clip, HOLDS_BUNDLE, keptLine, keptNumbers, keptOverlap, resolveKept, type KeptPart } from '../target/kept.ts';
import { parseSelector } from '../bundle/keepspec.ts';
import { inspect, major, minor, partitionsNow, type Disk } from '../target/sysfs.ts';
import { dumpTable, relocateBackupGpt, rewriteTable, sfdiskJson, type SfdiskTable } from '../system/disk.ts';
import type { Sys } from '../system/sys.ts';
import type { Log } from '../util/log.ts';
import type { Preflight, Run, RunOptions, Saved } from './context.ts';
import type { KeepPlace } from '../retention/archive.ts';
import { join } from 'node:path';
import { manifestSha256, REENTRY_FORMAT, writeRecord } from './reentry.ts';

export type { KeptPart } from '../target/kept.ts';

// refuseMountedBundle: a bundle read in place from a mounted partition of the
// target. The kernel gives nobody the whole disk exclusively while one of its
// partitions is mounted, so the run cannot go on; the same partition given as
// a device source is copied into RAM, unmounted and kept.
export async function refuseMountedBundle(o: Pick<RunOptions, 'target' | 'bundleInRam'>, bundleDir: string, sys: Sys): Promise<void> {
  if (o.bundleInRam) return;
  const st = await stat(bundleDir).catch(() => undefined);
  const d = st && (await inspect(o.target, sys));
  if (!st || !d) return;
  const dev = `${major(Number(st.dev))}:${minor(Number(st.dev))}`;
  const p = d.partitions.find((q) => q.dev === dev);
  if (!p) return;
  throw targetError(
    `the bundle ${bundleDir} is on /dev/${p.name}, a mounted partition of the target ${d.node}: a disk with a mounted partition cannot be written; give the bundle as --bundle PARTUUID=<its PARTUUID>:/<path inside it> instead (reimage copies it into RAM, unmounts the partition and keeps it), or put it on another disk`,
  );
}

// keptParts: the partitions this run keeps on DISK, refused (nothing written)
// when a selector matches nothing, the table is MBR, or the image would land in one.
export async function keptParts(o: Pick<RunOptions, 'keepParts' | 'bundlePart'>, bundle: Bundle, disk: Disk, log: Log, sys: Sys): Promise<KeptPart[]> {
  const m = bundle.manifest;
  const selectors = [...(m.keep ?? []).map((s) => parseSelector(s, `bundle ${bundle.dir}: keep`)), ...(o.keepParts ?? []).map((s) => parseSelector(s, '--keep'))];
  const bundlePart = await bundlePartition(o.bundlePart, disk, sys);
  if (!selectors.length && bundlePart === undefined) return [];
  const old: SfdiskTable | undefined = await sfdiskJson(disk.node, { ...sys, exit: 'target' });
  const kept = resolveKept(old, selectors, disk.node, bundlePart);
  const why = keptClash(kept, bundle);
  if (why) throw targetError(`${why}: the image cannot be written around it; nothing was written (use an image that leaves that range free, or keep another partition)`);
  const numbers = keptNumbers(kept, m.table);
  for (const k of kept) {
    const n = numbers.get(k);
    log.info(`keep ${k.node}${k.name ? ` ("${k.name}")` : ''} (${k.why.join(', ')}): never written${n !== k.number ? `; the image uses number ${k.number}, so it becomes partition ${n}` : ''}`);
  }
  return kept;
}

// keptClash: why the image cannot be written around KEPT (an image partition
// or mapped byte in one of them, a PARTUUID or name they share), or undefined.
export function keptClash(kept: readonly KeptPart[], bundle: Bundle): string | undefined {
  const mapped: [number, number][] = bundle.bmap ? extents(bundle.bmap).map((e) => [e.start, e.end]) : [[0, bundle.manifest.raw.size]];
  return keptOverlap(kept, bundle.manifest.table, mapped);
}

// bundlePartition: the number of the target's partition at NODE (where the bundle was read), if it is one.
async function bundlePartition(node: string | undefined, disk: Disk, sys: Sys): Promise<number | undefined> {
  if (!node) return undefined;
  const b = await sys.blockDev(node);
  return b ? (await partitionsNow(disk, sys)).find((p) => p.dev === b.dev)?.number : undefined;
}

// keptRanges: the byte ranges the write stage must never touch.
export const keptRanges = (kept: readonly KeptPart[]): [number, number][] => kept.map((k) => k.bytes);

// writable: [from, to) less the kept ranges.
export const writable = (from: number, to: number, kept: readonly KeptPart[]) => clip(from, to, keptRanges(kept));

// keptOnlyTable: right after the write stage cleared the old tables, a GPT
// holding only the kept partitions (same numbers, places and identities), so a
// power cut during the write leaves the bundle's partition findable by its
// PARTUUID for the re-entry, and nothing of the old system to boot. The image's
// first MiB, written last, replaces it; addKept then adds them to that table.
// A failure only costs that path: warned about, the write goes on.
export async function keptOnlyTable(disk: Disk, kept: readonly KeptPart[], log: Log, sys: Sys): Promise<void> {
  if (!kept.length) return;
  const lines = kept.map((k) => keptLine(k, disk.node, k.number));
  await rewriteTable(disk.node, `label: gpt\n${lines.join('\n')}\n`, { ...sys, exit: 'writeFailed' }).catch((e: Error) =>
    log.warn(`could not write a table of the kept partitions alone on ${disk.node} (${e.message}): a power cut before the new table lands leaves them without one`),
  );
}

// addKept: after the image's table is on DISK (and its backup GPT at the disk's
// end), the kept entries added to it in one sfdisk run; each must then be there.
export async function addKept(disk: Disk, bundle: Bundle, kept: readonly KeptPart[], log: Log, sys: Sys): Promise<void> {
  if (!kept.length) return;
  // The write stage's first MiB may already carry them (mergedHead): nothing to add then.
  const before = await sfdiskJson(disk.node, { ...sys, exit: 'afterWrite' });
  if (kept.every((k) => before?.partitions.some((q) => q.start === k.start && q.size === k.size && (q.uuid ?? '').toLowerCase() === k.uuid.toLowerCase()))) return;
  const numbers = keptNumbers(kept, bundle.manifest.table);
  await log.step(`put the ${kept.length} kept partition${kept.length === 1 ? '' : 's'} back into the new table`, async () => {
    const script = await dumpTable(disk.node, sys);
    const lines = kept.map((k) => keptLine(k, disk.node, numbers.get(k) ?? k.number));
    await rewriteTable(disk.node, `${script.trimEnd()}\n${lines.join('\n')}\n`, sys);
  });
  const now = await sfdiskJson(disk.node, { ...sys, exit: 'afterWrite' });
  for (const k of kept) {
    const p = now?.partitions.find((q) => q.start === k.start && q.size === k.size && (q.uuid ?? '').toLowerCase() === k.uuid.toLowerCase());
    if (!p) throw new ReimageError('afterWrite', `kept partition ${k.node} (PARTUUID ${k.uuid}) is not in the new table of ${disk.node} after adding it: its bytes are untouched; run reimage again`);
  }
}

// The re-entry record (stages/reentry.ts), written beside the retained set
// when that set is on a kept partition of the target (the bundle's own), right
// after the point of no return: what a boot after a power cut needs to finish the job.
export { REENTRY_FILE, REENTRY_FORMAT } from './reentry.ts';

// markPassed: the re-entry record into each place on a kept partition that holds
// the saved set; ATTEMPT counts the runs that passed the point of no return for it.
export async function markPassed(run: Pick<Run, 'o' | 'log'>, pre: Pick<Preflight, 'bundle' | 'disk' | 'kept' | 'keep'>, saved: readonly Saved[], now: Date = new Date(), attempt = 1): Promise<void> {
  const { o, log } = run;
  // The bundle's partition on the target, or the kept partition the run chose to hold the set (a bundle by URL);
  // only where this run's set is (a place that did not take it may hold an older one).
  const onTarget = (p: KeepPlace) => p === pre.keep.home || (p.device !== undefined && p.device === o.bundlePart && pre.kept.some((k) => k.why.includes(HOLDS_BUNDLE) || attempt > 1));
  const places = pre.keep.places.filter((p) => onTarget(p) && saved.some((s) => s.where === join(p.name, pre.keep.key)));
  if (!places.length || (!saved.length && attempt === 1)) return;
  const m = pre.bundle.manifest;
  const record = {
    format: REENTRY_FORMAT,
    passed: now.toISOString(),
    attempt,
    bundle: { location: o.bundleLocation ?? pre.bundle.dir, rawSha256: m.raw.sha256, manifestSha256: await manifestSha256(pre.bundle), ...(m.version ? { version: m.version } : {}) },
    archive: pre.keep.key,
    disk: { node: pre.disk.node, serial: pre.disk.serial, wwn: pre.disk.wwn, size: pre.disk.size },
    kept: pre.kept.map((k) => ({ number: k.number, start: k.start, size: k.size, type: k.type, partuuid: k.uuid, ...(k.name ? { name: k.name } : {}), ...(k.attrs ? { attrs: k.attrs } : {}) })),
  } as const;
  for (const p of places) {
    let opened: Awaited<ReturnType<KeepPlace['open']>> | undefined;
    try {
      opened = await p.open();
      const dir = opened.dir;
      if (
        await stat(join(dir, pre.keep.key, 'retained.json')).then(
          () => true,
          () => false,
        )
      )
        await writeRecord(dir, pre.keep.key, record);
    } catch (e) {
      log.warn(`could not write the re-entry record in ${p.name}: ${(e as Error).message}`);
    } finally {
      await opened?.close().catch(() => {});
    }
  }
}

// growBytes: the disk size --grow can count on. The last partition grows up
// to the first kept partition after the image (sfdisk stops there), else to
// the disk's end; growSpare and the plan take 1 MiB off for a backup GPT,
// which lies at the disk's end, not before a kept partition: added back here.
export function growBytes(kept: readonly KeptPart[], imageEnd: number, diskSize: number): number {
  const next = kept.map((k) => k.bytes[0]).filter((s) => s >= imageEnd);
  return next.length ? Math.min(...next) + (1 << 20) : diskSize;
}

// mergedHead: the image's first MiB HEAD with the kept entries already in its
// GPT, and the matching backup GPT for the disk's last MiB (from FROM on),
// made by the same sfdisk runs as settle's on a sparse scratch file the size
// of DISK: so the table that lands with the first MiB never lacks the bundle's
// partition (a re-entry after a cut right then still finds it by PARTUUID).
// Undefined (settle adds them as before) when it cannot be made.
export async function mergedHead(
  disk: Disk,
  bundle: Bundle,
  kept: readonly KeptPart[],
  head: Buffer,
  dir: string,
  log: Log,
  sys: Sys,
): Promise<{ head: Buffer; tail: Buffer; from: number } | undefined> {
  const m = bundle.manifest;
  if (!kept.length || m.table.label !== 'gpt' || disk.sectorSize !== 512 || disk.size <= m.raw.size) return undefined;
  const scratch = join(dir, 'table.img');
  try {
    const fh = await open(scratch, 'w+');
    try {
      await fh.truncate(disk.size);
      await fh.write(head, 0, head.length, 0);
    } finally {
      await fh.close();
    }
    const via = { ...sys, exit: 'writeFailed' as const };
    await relocateBackupGpt(scratch, via);
    const numbers = keptNumbers(kept, m.table);
    const script = await dumpTable(scratch, via);
    const lines = kept.map((k) => keptLine(k, scratch, numbers.get(k) ?? k.number));
    await rewriteTable(scratch, `${script.trimEnd()}\n${lines.join('\n')}\n`, via);
    const from = Math.max(m.raw.size, disk.size - (1 << 20));
    const out = { head: Buffer.alloc(head.length), tail: Buffer.alloc(disk.size - from), from };
    const r = await open(scratch, 'r');
    try {
      await r.read(out.head, 0, head.length, 0);
      await r.read(out.tail, 0, out.tail.length, from);
    } finally {
      await r.close();
    }
    // The boot code is the caller's (the image's, or a boot kit's): only the table comes from here.
    head.copy(out.head, 0, 0, 440);
    return out;
  } catch (e) {
    log.warn(`could not put the kept partitions into the image's table ahead of its first MiB (${(e as Error).message}): settle adds them; a power cut between the two leaves them out of the table`);
    return undefined;
  } finally {
    await rm(scratch, { force: true });
  }
}
