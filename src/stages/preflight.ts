// preflight: everything that can be checked without copying the image. The
// bundle's manifest and file sizes, the retention list, the target disk
// (whole disk, not busy, big enough, exclusive), the old system's partitions
// on it, and whether RAM can hold the compressed image at all.
import { mkdir, mkdtemp, readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadBundle } from '../bundle/read.ts';
import { loadTrusted } from '../bundle/sign.ts';
import { acquireLock, diskLock } from './lock.ts';
import { retentionInUse } from '../retention/guard.ts';
import { checkCompatible } from './compat.ts';
import { ReimageError, usageError } from '../errors.ts';
import { parseList } from '../retention/list.ts';
import { checkTarget } from '../target/check.ts';
import { checkFingerprint } from '../target/fingerprint.ts';
import { checkKernel } from '../target/kernel.ts';
import { oldPartitions } from '../target/old.ts';
import { checkRam } from './budget.ts';
import type { Ctx } from './context.ts';

export async function preflight(ctx: Ctx): Promise<void> {
  const { o, log } = ctx;
  if (process.getuid?.() !== 0) throw new ReimageError('environment', `reimage ${ctx.planOnly ? 'plan' : 'run'} needs root (it opens the disk and mounts file systems): run it as root`);
  await mkdir(o.runBase, { recursive: true, mode: 0o700 });
  ctx.runDir = await mkdtemp(join(o.runBase, 'run-'));
  const runDir = ctx.runDir;
  // rmdir only, never a recursive delete: if an unmount failed, a file system is still below.
  ctx.cleanup.push(`remove ${runDir}`, async () => {
    for (const d of ['old', 'new', 'stage']) await rmdir(join(runDir, d)).catch(() => {});
    await rmdir(runDir);
  });
  const bundle = await loadBundle(o.bundle, await loadTrusted(o.trust));
  if (bundle.signedBy) log.info(`bundle signature by trusted key ${bundle.signedBy} verified`);
  ctx.bundle = bundle;
  if (o.retain) {
    const bytes = await readFile(o.retain).catch(() => undefined);
    if (!bytes) throw usageError(`retention list ${o.retain} cannot be read: check the path`);
    ctx.list = { name: o.retain, entries: parseList(bytes, o.retain) };
  } else if (bundle.retention) {
    ctx.list = { name: bundle.retention.name, entries: bundle.retention.entries };
  }
  ctx.list = retentionInUse(ctx.list, o.noRetain === true, log.warn);
  const m = bundle.manifest;
  checkCompatible(m, o.compatible);
  await checkKernel(m);
  const disk = await checkTarget(o.target, m.raw.size, m.table.sectorSize);
  ctx.disk = disk;
  // One run per disk (a plan writes nothing and takes no lock): runs on other disks go on.
  if (!ctx.planOnly) ctx.cleanup.push('release the lock', await acquireLock(diskLock(o.runBase, disk)));
  if (o.fingerprint) await checkFingerprint(disk, o.fingerprint);
  await checkRam(m.image.size);
  // The old system: make the kernel's partitions match what is on the disk (read-only work).
  const needed = ctx.list.entries.length ? 'the retained files' : m.version !== undefined ? 'the installed version (anti-rollback)' : undefined;
  ctx.oldParts = await oldPartitions(disk, needed, log);
}
