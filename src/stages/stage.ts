// stage: the old system mounted read-only (by label, or as overridden), the
// retention list scanned (missing required entries and unsupported file types
// refused), the RAM budget checked, then the image copied into a tmpfs while
// hashing and checked against the manifest, and every retained entry captured
// into the same tmpfs. Nothing is written to the target.
import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { checkPacked, verifyRaw } from '../bundle/verify.ts';
import { checkImageTable } from '../image/head.ts';
import { retentionError } from '../errors.ts';
import { capture } from '../retention/capture.ts';
import { emptyIds, readIds } from '../retention/ids.ts';
import { emptyScan, scan } from '../retention/scan.ts';
import { display } from '../util/bytes.ts';
import { hashFile } from '../util/hash.ts';
import { withProgress } from '../util/progress.ts';
import { mount, umount } from '../system/tools.ts';
import type { Ctx } from './context.ts';
import { mountPlan, oldPlan } from './mounts.ts';
import { checkRam } from './budget.ts';
import { checkFit, growSpare } from './fit.ts';
import { checkDowngrade, installedVersion } from './compat.ts';
import { findResumable, savedAsFound } from './keep.ts';
import { proofFor } from './proof.ts';
import { loadArchiveData } from '../retention/archive.ts';

export async function scanOld(ctx: Ctx): Promise<void> {
  const { bundle, list, oldParts, o, cleanup, log } = need(ctx);
  if (await findResumable(ctx, ctx.disk!, bundle.dir)) {
    const a = ctx.resumed!.archive;
    ctx.oldUsers = a.users;
    ctx.oldGroups = a.groups;
    ctx.scan = { ...emptyScan(), bytes: a.entries.reduce((n, c) => n + (c.staged ? c.size : 0), 0) };
    return;
  }
  if (list.entries.length === 0 && !bundle.manifest.version) {
    ctx.scan = emptyScan();
    return;
  }
  const plan = oldPlan(bundle.manifest, o.oldMounts);
  const base = join(ctx.runDir, 'old');
  const { missing, umountAll } = await mountPlan(oldParts, plan, base, 'ro', cleanup, 'retention');
  ctx.oldUmount = umountAll;
  const root = missing.find((l) => l.path === '/');
  if (root) {
    throw retentionError(`the old system's root (${root.kind}=${root.value}) is not on ${ctx.disk!.node}, so retained files cannot be read: pass --old-mount SPEC:/ to name it`);
  }
  for (const l of missing) log.warn(`${l.why ?? `old system: ${l.kind}=${l.value} for ${l.path} not found on the target`}; entries below ${l.path} are read from the root file system`);
  ctx.oldRoot = base;
  checkDowngrade(bundle.manifest, await installedVersion(base, (w) => log.warn(`old system: ${w}`)), o.allowDowngrade);
  const ids = await readIds(base, (w) => log.warn(`old system: ${w}`), true);
  ctx.oldUsers = ids.users;
  ctx.oldGroups = ids.groups;
  ctx.scan = await scan(base, list.entries, o.caps);
  checkFit(bundle.manifest, ctx.scan.found, log, o.grow ? growSpare(bundle.manifest, ctx.disk!.size) : undefined);
  for (const k of ctx.scan.skipped) log.warn(`retention: skipped ${display(k.path)} (list line ${k.line}): it is ${k.kind}, which cannot be retained`);
  log.info(
    `retention: ${ctx.scan.found.length} entries (${ctx.scan.bytes} bytes, ${ctx.scan.allocated} allocated) found, ${ctx.scan.missingOptional.length} optional missing, ${ctx.scan.skipped.length} special files skipped`,
  );
}

export async function stage(ctx: Ctx): Promise<void> {
  const { bundle, o, cleanup, log } = need(ctx);
  const s = ctx.scan!;
  const m = bundle.manifest;
  const inRam = o.bundleInRam === true;
  // A resumed set is staged from where it was saved; a set kept only in RAM costs its bytes twice.
  const staging = ctx.resumed ? savedAsFound(ctx.resumed.archive.entries) : s.found;
  const b = await checkRam(inRam ? 0 : m.image.size, ctx.keep.some((p) => p.survivesReboot) ? staging : [...staging, ...staging]);
  const dir = join(ctx.runDir, 'stage');
  await mkdir(dir, { recursive: true });
  // tmpfs counts pages and inodes, not bytes: a 1-byte file takes a page (budget.ts).
  await mount('tmpfs', dir, 'tmpfs', `nr_blocks=${b.pages},nr_inodes=${b.inodes},mode=0700`);
  cleanup.push('remove the RAM stage', async () => {
    await umount(dir);
    await rmdir(dir).catch(() => {});
  });
  const staged = inRam ? bundle.imagePath : join(dir, bundle.manifest.image.file);
  const got = inRam
    ? await log.step(`hash the image in RAM (${m.image.size} bytes)`, () => withProgress('hashing', m.image.size, log, (tick) => hashFile(staged, undefined, o.signal, tick)))
    : await log.step(`copy the image into RAM (${m.image.size} bytes)`, () => withProgress('staging', m.image.size, log, (tick) => hashFile(bundle.imagePath, staged, o.signal, tick)));
  checkPacked(bundle.imagePath, got, m);
  log.info(`image sha256 ${got.sha256} matches the manifest`);
  await log.step("compare the image's own partition table with the manifest", () => checkImageTable(staged, m));
  const proof = proofFor(bundle, o.verifyRaw);
  if (proof.decodeFirst) await log.step('decompress and check the raw image in RAM', () => withProgress('decoding', m.raw.size, log, (tick) => verifyRaw(staged, m, bundle.bmap, o.signal, tick)));
  ctx.stagedImage = staged;
  if (ctx.resumed) {
    const { place } = ctx.resumed;
    ctx.captured = await log.step('copy the saved retained entries into RAM', () => loadArchiveData(place, ctx.archiveKey!, dir, o.signal));
  } else if (s.found.length) {
    ctx.captured = await log.step('capture retained entries into RAM', () => capture(s.found, dir, ctx.oldUsers ?? emptyIds(), ctx.oldGroups ?? emptyIds()));
  } else {
    ctx.captured = [];
  }
  await ctx.oldUmount?.();
}

function need(ctx: Ctx) {
  const { bundle, list, oldParts } = ctx;
  if (!bundle || !list || !oldParts) throw new Error('stage ran before preflight');
  return { ...ctx, bundle, list, oldParts };
}
