// write: RAM -> decompress -> disk. The old first and last MiB (boot code,
// partition tables) are zeroed before anything else, and the new first MiB is
// held back and written last, after everything else is on the disk and
// synced: a power cut at any moment leaves a disk with no partition table,
// never an old table pointing at half-overwritten partitions. The disk's tail
// beyond the image is zeroed so no old backup GPT survives there. With a
// block map, only mapped ranges need writing (see Unmapped). A failed block
// write is retried from the RAM copy. With --verify-written the disk is read
// back (page cache dropped first) and checked like the decoded image; a
// mismatch gets one full rewrite from RAM.
// On any failure the disk is invalidated on purpose (first and last MiB
// zeroed) so it can never boot a half-written system.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { ReimageError } from '../errors.ts';
import { blankRange, flushBuffers } from '../system/tools.ts';
import { guardWriter, HEAD, openWriter, zeroRange, type Writer } from '../target/writer.ts';
import { clip } from '../target/kept.ts';
import { describeDisk } from '../target/check.ts';
import type { Disk } from '../target/sysfs.ts';
import { planWrite, type WritePlan as Plan } from '../target/plan.ts';
import { human } from '../util/bytes.ts';
import { createProgress } from '../util/progress.ts';
import { checkpoint } from '../util/interrupt.ts';
import type { Log } from '../util/log.ts';
import type { Sys } from '../system/sys.ts';
import type { Run, Wrote } from './context.ts';
import type { Passed } from './phase.ts';
import { keptOnlyTable, mergedHead } from './kept.ts';
import { kitEntry, layBootCode } from './bootkit.ts';
import { BOOT_CODE } from '../target/bootkit.ts';
import { testCut, testPause } from '../util/testcut.ts';
import { checkList, decodeChecked } from '../image/decode.ts';
import { BLOCK, type Sink } from '../image/mismatch.ts';
import { extents, type BlockMap } from '../bmap/format.ts';
import { makeChecker } from '../image/check.ts';
import type { Manifest } from '../bundle/manifest.ts';

// Gaps up to this size between mapped pieces are written through (they are zeros in the image): fewer, larger writes.
const GAP = 1 << 20;

export async function write(run: Run, p: Passed): Promise<Wrote> {
  const { log, o } = run;
  const { disk } = p;
  const m = p.bundle.manifest;
  const map = p.bundle.bmap;
  // The kept partitions' bytes are cut out of every write (stages/kept.ts).
  const kept = p.kept.map((k) => k.bytes);
  const w = guardWriter(await openWriter(disk, (why) => log.warn(why)), kept);
  const t0 = Date.now();
  // Kept partitions stay findable (the bundle's, for a re-entry after a power cut) while the disk has no other table.
  // With a boot kit, LBA 0 boots the reimage initrd from then on, and its firmware entry is made anew (stages/bootkit.ts).
  const kit = p.kit;
  const keptOnly = async () => {
    await keptOnlyTable(disk, p.kept, log, run.sys);
    if (kit?.code) await layBootCode(w, disk.node, kit.code);
    if (kit?.uefi) await kitEntry(run, disk.node, kit.uefi, true);
  };
  try {
    const plan = await planWrite(disk, map, o.unmapped ?? 'zero', run.sys);
    log.info(plan.why);
    const merge = (head: Buffer) => mergedHead(disk, p.bundle, p.kept, head, run.runDir, log, run.sys);
    const once = async () => {
      const r = await writeImage(w, disk, m, p.image, map, plan, log, run.sys, o.signal, kept, keptOnly, { merge, ...(kit?.code ? { code: kit.code } : {}) });
      // The image's table may give the kit's FAT partition another number: the entry follows it.
      if (kit?.uefi) await kitEntry(run, disk.node, kit.uefi);
      return r;
    };
    const got = await once();
    if (kit?.code && got.imageHead) kit.imageCode = Buffer.from(got.imageHead.subarray(0, BOOT_CODE));
    if (o.verifyWritten && !(await readBackOk(disk, m, map, plan.wholeImage && !kept.some(([a]) => a < m.raw.size), log, run.sys, got.imageHead))) {
      log.warn(`read-back of ${disk.node} does not match the image: rewriting once from RAM`);
      await once();
      if (!(await readBackOk(disk, m, map, plan.wholeImage && !kept.some(([a]) => a < m.raw.size), log, run.sys, got.imageHead)))
        throw new Error(`what ${disk.node} returns differs from what was written, twice: the disk is failing`);
    }
    const seconds = (Date.now() - t0) / 1000;
    const rate = (m.raw.size / 2 ** 20 / Math.max(seconds, 0.001)).toFixed(0);
    log.info(
      `wrote ${human(got.written)} of the ${human(m.raw.size)} image to ${describeDisk(disk)} in ${seconds.toFixed(1)} s (${rate} MiB/s of image), every byte checked (${got.checked})${o.verifyWritten ? ', read back ok' : ''}`,
    );
    return { bytes: m.raw.size, written: got.written, seconds, sha256: m.raw.sha256, checked: got.checked, unmapped: plan.unmapped, ...(o.verifyWritten ? { readBack: 'ok' as const } : {}) };
  } catch (e) {
    await invalidate(w, disk.size, log.warn);
    // The invalidated disk keeps the kept-only table (the kept partitions stay in a table, so the next run finds them and
    // what they hold) and a kit's path: the next start re-enters (up to reentryAttempts).
    if (p.kept.length) await keptOnly().catch((x: Error) => log.warn(`could not put the kept partitions${kit ? " and the boot kit's path" : ''} back after invalidating ${disk.node}: ${x.message}`));
    const why = e instanceof Error ? e.message : String(e);
    throw new ReimageError(
      'writeFailed',
      `writing the image to ${disk.node} failed after the point of no return (${why}); the disk was made unbootable on purpose: fix the cause and run reimage again`,
    );
  } finally {
    await w.close().catch(() => {});
  }
}

// writeImage: one pass of decode -> disk, first MiB last, tail zeroed, synced.
async function writeImage(
  w: Writer,
  disk: Disk,
  m: Manifest,
  staged: string,
  map: BlockMap | undefined,
  plan: Plan,
  log: Log,
  sys: Sys,
  signal?: AbortSignal,
  kept: readonly [number, number][] = [],
  afterClear: () => Promise<void> = async () => {},
  head1?: { code?: Buffer; merge?: (head: Buffer) => Promise<{ head: Buffer; tail: Buffer; from: number } | undefined> },
): Promise<{ written: number; checked: string; imageHead?: Buffer }> {
  const head = Buffer.alloc(Math.min(HEAD, m.raw.size));
  // Make the disk unbootable first: from here until the new first MiB lands, it
  // has no table but one of the kept partitions alone (nothing in it boots).
  await clearTables(w, disk.size);
  // Right after the clearing, before the (long) blanking: the kept-only table and a boot kit's path.
  await afterClear();
  let mappedOnly = plan.mappedOnly;
  if (plan.blank) {
    const length = m.raw.size - (m.raw.size % disk.sectorSize);
    try {
      // Around the kept partitions (sector-aligned, so every piece is too), past the first MiB:
      // clearTables zeroed it, and what afterClear put there must stay until the image's own lands.
      for (const [a, b] of clip(Math.min(HEAD, length), length, kept)) await blankRange(disk.node, plan.blank, a, b - a, sys);
      if (plan.blank === 'zero' && length < m.raw.size) await zeroRange(w, length, m.raw.size);
    } catch (e) {
      // The offload is a shortcut: when the disk fails it, the zeros go through
      // the ordinary (retrying) writes; a failed discard leaves the blocks as they are.
      log.warn(
        `${plan.blank === 'zero' ? 'zeroing' : 'discarding'} the unmapped blocks failed (${(e as Error).message}); ${plan.blank === 'zero' ? 'writing every byte instead' : 'leaving them as they are'}`,
      );
      if (plan.blank === 'zero') mappedOnly = false;
    }
  }
  // Progress measures the write itself: the bytes handed to the disk.
  const total = mappedOnly && map ? extents(map).reduce((n, e) => n + e.end - e.start, 0) : m.raw.size;
  const progress = createProgress('writing', total, log, process.stderr.isTTY === true);
  let written = 0;
  const put = async (buf: Buffer, at: number) => {
    if (at < head.length) {
      const n = Math.min(head.length - at, buf.length);
      buf.copy(head, at, 0, n);
      buf = buf.subarray(n);
      at += n;
    }
    if (buf.length) await w.write(buf, at);
    written += buf.length;
    // Power-cut tests: the process dies once half the image is on the disk (util/testcut.ts).
    if (written * 2 >= total) testCut('write', (l) => log.warn(l));
  };
  const sink: Sink = async (block, offset, covered) => {
    // A signal stops the write here; the caller invalidates the disk.
    checkpoint(signal);
    if (!mappedOnly) {
      await put(block, offset);
      return progress.add(block.length);
    }
    for (const [a, b] of coalesce(covered, GAP)) await put(block.subarray(a - offset, b - offset), a);
    progress.add(covered.reduce((n, [a, b]) => n + b - a, 0));
  };
  const got = await decodeChecked(staged, m, map, sink);
  progress.end();
  // Whatever lies beyond the image in the last MiB of the disk (an old backup GPT) goes.
  if (disk.size > m.raw.size) await zeroRange(w, Math.max(m.raw.size, disk.size - HEAD), disk.size);
  await w.sync();
  // Power-cut tests: everything but the first MiB is on the disk (util/testcut.ts).
  testCut('head', (l) => log.warn(l));
  await testPause('head', (l) => log.warn(l));
  // What lands may differ from the image's first MiB: the kept entries in its table, a boot kit's boot code.
  const imageHead = Buffer.from(head);
  const merged = await head1?.merge?.(head);
  if (merged) {
    merged.head.copy(head);
    await w.write(merged.tail, merged.from);
    await w.sync();
  }
  // The image's boot code waits for the end of the restore; the kit's stays (stages/bootkit.ts).
  if (head1?.code) head1.code.copy(head, 0, 0, BOOT_CODE);
  await w.write(head, 0);
  await w.sync();
  const changed = !head.equals(imageHead);
  return { written: written + head.length, checked: `${got.checked}${got.frames ? ', decoded on every core' : ''}`, ...(changed ? { imageHead } : {}) };
}

// coalesce: [start, end) pieces merged across gaps up to GAP bytes.
export function coalesce(pieces: readonly [number, number][], gap: number): [number, number][] {
  const out: [number, number][] = [];
  for (const [a, b] of pieces) {
    const last = out[out.length - 1];
    if (last && a - last[1] <= gap) last[1] = b;
    else out.push([a, b]);
  }
  return out;
}

// readBackOk: the disk read back past the page cache and checked like the
// decoded image: all of it when the disk should equal the image, else only
// what the block map covers.
async function readBackOk(disk: Disk, m: Manifest, map: BlockMap | undefined, wholeImage: boolean, log: Log, sys: Sys, imageHead?: Buffer): Promise<boolean> {
  await flushBuffers(disk.node, sys);
  const { list, hash } = checkList(m, map);
  const checker = makeChecker(list, hash, createHash, wholeImage);
  const spans: [number, number][] = wholeImage
    ? [[0, m.raw.size]]
    : coalesce(
        list.map((e) => [e.start, e.end]),
        GAP,
      );
  const buf = Buffer.allocUnsafeSlow(BLOCK);
  const fh = await open(disk.node, 'r');
  const progress = createProgress(
    'reading back',
    spans.reduce((n, [a, b]) => n + b - a, 0),
    log,
    process.stderr.isTTY === true,
  );
  try {
    for (const [a, b] of spans) {
      for (let at = a; at < b; ) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(BLOCK, b - at), at);
        if (bytesRead === 0) return false;
        // The first MiB on the disk may differ on purpose (kept entries, a boot kit's code): the image's is compared.
        if (imageHead && at < imageHead.length) imageHead.copy(buf, 0, at, Math.min(imageHead.length, at + bytesRead));
        checker.feed(buf.subarray(0, bytesRead), at);
        at += bytesRead;
        progress.add(bytesRead);
      }
    }
    checker.done();
    return true;
  } catch (e) {
    log.warn(`read-back: ${(e as Error).message}`);
    return false;
  } finally {
    progress.end();
    await fh.close();
  }
}

// clearTables: zero the first and last MiB (MBR, primary and backup GPT), synced.
async function clearTables(w: Writer, size: number): Promise<void> {
  await zeroRange(w, 0, Math.min(HEAD, size));
  await zeroRange(w, Math.max(0, size - HEAD), size);
  await w.sync();
}

// invalidate: clearTables after a failure, never throwing over the failure's own error.
export async function invalidate(w: Writer, size: number, warn: (l: string) => void): Promise<void> {
  try {
    await clearTables(w, size);
    warn('the disk was invalidated (first and last MiB zeroed): it will not boot until reimaged');
  } catch (e) {
    warn(`could not invalidate the disk: ${(e as Error).message}`);
  }
}
