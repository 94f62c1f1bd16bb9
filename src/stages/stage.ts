// stage: the old system mounted read-only (by label, or as overridden), the
// retention list scanned (missing required entries and unsupported file types
// refused), the RAM budget checked, then the image copied into a tmpfs while
// hashing and checked against the manifest, and every retained entry captured
// into the same tmpfs. Nothing is written to the target.
import { growBytes } from './kept.ts';
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
import type { Preflight, Run, Scanned, Staged } from './context.ts';
import { mountPlan, oldPlan } from './mounts.ts';
import { withOldSubvols } from './subvols.ts';
import { container } from '../util/containers.ts';
import { checkRam } from './budget.ts';
import { checkFit, growSpare } from './fit.ts';
import { checkDowngrade, installedVersion } from './compat.ts';
import { findResumable, savedAsFound } from './keep.ts';
import type { Proof } from './proof.ts';
import { loadArchiveData } from '../retention/archive.ts';

// scanOld: the old system mounted read-only and the retention list scanned
// in it (left mounted for capture), or the saved set of an earlier run that
// failed past its point of no return.
export async function scanOld(run: Run, pre: Preflight): Promise<Scanned> {
  const { o, cleanup, log } = run;
  const { bundle, list, oldParts, disk } = pre;
  const resumed = await findResumable(log, pre, run.sys);
  if (resumed) {
    const a = resumed.archive;
    const bytes = a.entries.reduce((n, c) => n + (c.staged ? c.size : 0), 0);
    return { ids: { users: a.users, groups: a.groups }, scan: { ...emptyScan(), bytes }, resumed, unmount: async () => {} };
  }
  if (list.entries.length === 0 && !bundle.manifest.version) return { ids: { users: emptyIds(), groups: emptyIds() }, scan: emptyScan(), unmount: async () => {} };
  const plan = await withOldSubvols(oldParts, oldPlan(bundle.manifest, o.oldMounts), (w) => log.warn(w));
  const base = join(run.runDir, 'old');
  const { missing, umountAll } = await mountPlan(oldParts, plan, base, 'ro', cleanup, 'retention', run.sys, run.notes);
  const root = missing.find((l) => l.path === '/');
  if (root) {
    const held = oldParts.find((p) => container(p.fstype));
    const c = container(held?.fstype);
    const why = held && c ? ` (${held.node} is ${c.what}: ${c.why}; reimage with an empty retention list to keep nothing)` : '';
    throw retentionError(`the old system's root (${root.kind}=${root.value}) is not on ${disk.node}${why}, so retained files cannot be read: pass --old-mount SPEC:/ to name it`);
  }
  for (const l of missing) log.warn(`${l.why ?? `old system: ${l.kind}=${l.value} for ${l.path} not found on the target`}; entries below ${l.path} are read from the root file system`);
  checkDowngrade(bundle.manifest, await installedVersion(base, (w) => log.warn(`old system: ${w}`)), o.allowDowngrade);
  const ids = await readIds(base, (w) => log.warn(`old system: ${w}`), true);
  const found = await scan(base, list.entries, o.caps);
  checkFit(bundle.manifest, found.found, log, o.grow ? growSpare(bundle.manifest, growBytes(pre.kept, bundle.manifest.raw.size, disk.size)) : undefined);
  for (const k of found.skipped) log.warn(`retention: skipped ${display(k.path)} (list line ${k.line}): it is ${k.kind}, which cannot be retained`);
  log.info(
    `retention: ${found.found.length} entries (${found.bytes} bytes, ${found.allocated} allocated) found, ${found.missingOptional.length} optional missing, ${found.skipped.length} special files skipped`,
  );
  return { ids, scan: found, unmount: umountAll };
}

// stage: the image copied into a RAM file system while hashing and proven
// there, and every retained entry captured beside it; the old system is
// unmounted at the end.
export async function stage(run: Run, pre: Preflight, scanned: Scanned, proof: Proof): Promise<Staged> {
  const { o, cleanup, log } = run;
  const { bundle, keep } = pre;
  const { scan: s, resumed } = scanned;
  const m = bundle.manifest;
  const inRam = o.bundleInRam === true;
  // A resumed set is staged from where it was saved; a set kept only in RAM costs its bytes twice.
  const staging = resumed ? savedAsFound(resumed.archive.entries) : s.found;
  const b = await checkRam(inRam ? 0 : m.image.size, keep.places.some((p) => p.survivesReboot) ? staging : [...staging, ...staging]);
  const dir = join(run.runDir, 'stage');
  await mkdir(dir, { recursive: true });
  // tmpfs counts pages and inodes, not bytes: a 1-byte file takes a page (budget.ts).
  await mount('tmpfs', dir, 'tmpfs', `nr_blocks=${b.pages},nr_inodes=${b.inodes},mode=0700`, run.sys);
  cleanup.push('remove the RAM stage', async () => {
    await umount(dir, run.sys);
    await rmdir(dir).catch(() => {});
  });
  const image = inRam ? bundle.imagePath : join(dir, m.image.file);
  const got = inRam
    ? await log.step(`hash the image in RAM (${m.image.size} bytes)`, () => withProgress('hashing', m.image.size, log, (tick) => hashFile(image, undefined, o.signal, tick)))
    : await log.step(`copy the image into RAM (${m.image.size} bytes)`, () => withProgress('staging', m.image.size, log, (tick) => hashFile(bundle.imagePath, image, o.signal, tick)));
  checkPacked(bundle.imagePath, got, m);
  log.info(`image sha256 ${got.sha256} matches the manifest`);
  await log.step("compare the image's own partition table with the manifest", () => checkImageTable(image, m));
  if (proof.decodeFirst) await log.step('decompress and check the raw image in RAM', () => withProgress('decoding', m.raw.size, log, (tick) => verifyRaw(image, m, bundle.bmap, o.signal, tick)));
  const captured = resumed
    ? await log.step('copy the saved retained entries into RAM', () => loadArchiveData(resumed.place, keep.key, dir, o.signal))
    : s.found.length
      ? await log.step('capture retained entries into RAM', () => capture(s.found, dir, scanned.ids.users, scanned.ids.groups))
      : [];
  await scanned.unmount();
  return { image, captured, proof: proof.text };
}
