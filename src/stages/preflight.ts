// preflight: everything that can be checked without copying the image. The
// bundle's manifest and file sizes, the retention list, the target disk
// (whole disk, not busy, big enough, exclusive), the old system's partitions
// on it, and whether RAM can hold the compressed image at all.
import { isUrl } from '../util/url.ts';
import { mkdir, mkdtemp, readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadBundle, type Bundle } from '../bundle/read.ts';
import { loadTrusted } from '../bundle/sign.ts';
import { acquireLock, diskLocks, lockHolder } from './lock.ts';
import { retentionInUse } from '../retention/guard.ts';
import { checkCompatible } from './compat.ts';
import { bundleError, ReimageError, usageError } from '../errors.ts';
import { tableProblem } from '../image/bounds.ts';
import { parseList } from '../retention/list.ts';
import { checkTarget } from '../target/check.ts';
import { checkFingerprint } from '../target/fingerprint.ts';
import { checkLayout } from '../target/layout.ts';
import { checkKernel } from '../target/kernel.ts';
import { oldPartitions } from '../target/old.ts';
import { checkRam } from './budget.ts';
import { archiveKey } from '../retention/archive.ts';
import type { Sys } from '../system/sys.ts';
import type { Cleanup } from '../util/cleanup.ts';
import type { Log } from '../util/log.ts';
import type { Preflight, RetentionList, Run, RunOptions } from './context.ts';
import { keepPlaces, keptHome } from './keep.ts';
import { sendKept } from './outcome.ts';
import { checkLvm } from './lvm.ts';
import { keptClash, keptParts, refuseMountedBundle } from './kept.ts';
import { findReentry, keptFromRecord, REENTRY_FILE } from './reentry.ts';

// openRun: the run's private directory (root only), undone by the cleanup stack;
// NOTES is the trail's list the stages add report lines to.
export async function openRun(o: RunOptions, log: Log, cleanup: Cleanup, sys: Sys, command: 'run' | 'plan', notes: string[]): Promise<Run> {
  if (process.getuid?.() !== 0) throw new ReimageError('environment', `reimage ${command} needs root (it opens the disk and mounts file systems): run it as root`);
  await mkdir(o.runBase, { recursive: true, mode: 0o700 });
  const runDir = await mkdtemp(join(o.runBase, 'run-'));
  // rmdir only, never a recursive delete: if an unmount failed, a file system is still below.
  cleanup.push(`remove ${runDir}`, async () => {
    for (const d of ['old', 'new', 'stage']) await rmdir(join(runDir, d)).catch(() => {});
    await rmdir(runDir);
  });
  return { o, log, cleanup, runDir, sys, plan: command === 'plan', notes };
}

// preflight: the bundle (manifest, signature), the retention list, the target
// disk and the old system's partitions on it, and where the retained set goes.
export async function preflight(run: Run): Promise<Preflight> {
  const { o, log, sys } = run;
  const bundle = await loadBundle(o.bundle, await loadTrusted(o.trust));
  if (bundle.signedBy) log.info(`bundle signature by trusted key ${bundle.signedBy} verified`);
  const list = retentionInUse(await retentionList(o.retain, bundle), o.noRetain === true, log.warn);
  const m = bundle.manifest;
  checkCompatible(m, o.compatible);
  await checkKernel(m, sys);
  await refuseMountedBundle(o, bundle.dir, sys);
  const disk = await checkTarget(o.target, m.raw.size, m.table.sectorSize, sys);
  const misfit = tableProblem(m.table, disk.size, disk.node);
  if (misfit) throw bundleError(`bundle ${o.bundle}: ${misfit}; nothing was written`);
  // One run per disk (a plan writes nothing and takes no lock): runs on other disks go on.
  for (const lock of diskLocks(o.runBase, disk)) {
    if (!run.plan) {
      run.cleanup.push('release the lock', await acquireLock(lock));
      continue;
    }
    const pid = await lockHolder(lock);
    if (pid !== undefined) log.warn(`another reimage (pid ${pid}) is running on ${disk.node} (lock ${lock}): this plan reads a disk that is being rewritten; plan again when it has finished`);
  }
  const given = await keepPlaces(o, bundle.dir);
  // Nothing given lasts (a bundle by URL): a kept partition of the target holds the set, its record and the reports.
  const home = given.some((p) => p.survivesReboot) ? undefined : await keptHome(o, m, disk, log, sys);
  const keep = { places: home ? [home.keep, ...given] : given, key: archiveKey(disk), ...(home ? { home: home.keep } : {}) };
  // A bundle by URL: urlOutbox may have chosen one before the bundle came, from --keep or the policy alone (the manifest's
  // may come first); the home replaces it, and what is kept there goes first unless that was the same partition.
  const early = isUrl(o.bundleLocation ?? '') ? o.deliver?.medium : undefined;
  if (home && o.deliver && (!o.deliver.medium || early) && !run.plan) {
    o.deliver.medium = home.outbox;
    if (early?.name !== home.outbox.name) await sendKept(o.deliver, log);
  }
  // A run with this bundle that passed its point of no return on this disk
  // (reentry.ts): the disk may hold any mix of old and new bytes, so nothing
  // below reads the old system for it; bundle and disk identity were checked above.
  const reentry = await findReentry(keep.places, keep.key, bundle, disk, log, o.reentryAttempts);
  if (reentry) {
    if (o.fingerprint) log.warn(`re-entry: the layout fingerprint is not checked (the disk's table is half rewritten by the earlier run)`);
    await checkRam(m.image.size);
    const oldParts = await oldPartitions(disk, undefined, log, sys);
    // The record is not signed (the old system could have written it): what it keeps must fit around the image as a first run's would.
    const kept = keptFromRecord(reentry.record, disk.node, m.table.sectorSize);
    const clash = keptClash(kept, bundle);
    if (clash)
      throw new ReimageError(
        'afterWrite',
        `re-entry record ${reentry.where}: ${clash}: the record is not one this bundle's run could have written; nothing was written again (delete ${REENTRY_FILE} and reimage)`,
        { reentry: true },
      );
    return { bundle, disk, list, oldParts, keep, kept, reentry };
  }
  if (o.fingerprint) await checkFingerprint(disk, o.fingerprint, sys);
  // A captured factory image fits only the layout it was taken from ("refuse if the layout changed").
  if (m.layout) await checkLayout(disk, m.layout, sys);
  await checkRam(m.image.size);
  // The old system: make the kernel's partitions match what is on the disk (read-only work).
  const needed = list.entries.length ? 'the retained files' : m.version !== undefined ? 'the installed version (anti-rollback)' : undefined;
  const oldParts = await oldPartitions(disk, needed, log, sys);
  await checkLvm(m, oldParts, sys);
  const kept = await keptParts(o, bundle, disk, log, sys);
  return { bundle, disk, list, oldParts, keep, kept };
}

// retentionList: --retain, else the bundle's own list, else none.
async function retentionList(path: string | undefined, bundle: Bundle): Promise<RetentionList | undefined> {
  if (path) {
    const bytes = await readFile(path).catch(() => undefined);
    if (!bytes) throw usageError(`retention list ${path} cannot be read: check the path`);
    return { name: path, entries: parseList(bytes, path) };
  }
  return bundle.retention && { name: bundle.retention.name, entries: bundle.retention.entries };
}
