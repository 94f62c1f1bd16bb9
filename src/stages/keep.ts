// keep: the retained set saved where it survives, before the point of no
// return, and found again by the next run after a failure past it. The places
// are the caller's (a --keep-dir, the bundle's medium in the initramfs, the
// run directory in RAM) plus, for `reimage run`, the bundle directory itself.
import { join } from 'node:path';
import { annotate, dirPlace, inRam, dropArchive, findArchive, saveArchive, type KeepPlace } from '../retention/archive.ts';
import { ReimageError, retentionError } from '../errors.ts';
import { coveredBy } from '../retention/list.ts';
import { display, human } from '../util/bytes.ts';
import type { Log } from '../util/log.ts';
import type { KeepAt, Preflight, Resumed, Run, RunOptions, Saved, Scanned, Staged } from './context.ts';
import type { Manifest } from '../bundle/manifest.ts';
import { blkidProbe, debugfsCat } from '../system/tools.ts';
import type { Sys } from '../system/sys.ts';
import type { PartIdentity } from '../target/partitions.ts';
import { REPORT_DIR } from './finish.ts';
import { findPart } from './mounts.ts';
import type { BigIntStats } from 'node:fs';
import type { Captured } from '../retention/capture.ts';
import type { Found } from '../retention/scan.ts';
import { partitionPlace } from '../retention/partplace.ts';
import { parseSelector } from '../bundle/keepspec.ts';
import { resolveKept } from '../target/kept.ts';
import { oldPartitions } from '../target/old.ts';
import { sfdiskJson } from '../system/disk.ts';
import { MEDIUM_OUTBOX, sendKept } from './outcome.ts';
import type { Deliver } from './outbox.ts';
import { hostSys } from '../system/sys.ts';
import { inspect, type Disk } from '../target/sysfs.ts';
import { refuseBusy } from '../target/check.ts';
import { diskLocks, lockHolder } from './lock.ts';

// keepPlaces: the run's places, in the order they are tried (lasting ones
// first). A directory on a RAM file system (a bundle in /dev/shm, a live
// system's tmpfs) does not count as lasting, whatever the caller said.
export async function keepPlaces(o: Pick<RunOptions, 'keep' | 'keepInBundle' | 'bundleInRam'>, bundleDir: string): Promise<KeepPlace[]> {
  const bundlePlace = o.keepInBundle && !o.bundleInRam ? [dirPlace(join(bundleDir, 'reimage-retained'), true)] : [];
  const places = await Promise.all([...o.keep, ...bundlePlace].map(async (p) => (p.survivesReboot && p.path && (await inRam(p.path)) ? { ...p, survivesReboot: false } : p)));
  return [...places.filter((p) => p.survivesReboot), ...places.filter((p) => !p.survivesReboot)];
}

// POSIX file systems keep the set's modes (0700, 0600) and owners; a FAT
// partition (a boot kit's) does not, so it never holds one.
const HOME_FS = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs']);

// KeptHome: a kept partition of the target that holds what a run without a
// lasting place of its own must not lose.
export type KeptHome = { keep: KeepPlace; outbox: KeepPlace };

// keptHome: for a run none of whose places lasts (a bundle by URL), the first
// kept partition of the target named by PARTLABEL= or PARTUUID= (the bundle's
// `keep`, the policy's or --keep; found in the disk's table as it is now) with
// a POSIX file system. The image never writes its bytes, so it holds the
// retained set with its re-entry record (reimage-retained/ at its root) and
// the reports the endpoint did not take (reimage-outbox/); the next run, a
// re-entry after a power cut too, finds it by the same selector (no image
// partition may carry its PARTUUID or name: kept.ts). A TYPE= selector names
// no home: once the image's table is in, image partitions may share the type.
// Each time the place is opened the partition is looked up by PARTUUID (the
// image's table may give it another number) and must still hold the file
// system found here (its UUID), and no other live run may hold the disk's
// lock (before preflight takes it, another run may own the disk). A selector that matches nothing here is
// keptParts' refusal, later.
export async function keptHome(o: Pick<RunOptions, 'keepParts' | 'runBase'>, m: Pick<Manifest, 'keep'>, disk: Disk, log: Log, sys: Sys): Promise<KeptHome | undefined> {
  const texts = [...(m.keep ?? []), ...(o.keepParts ?? [])].filter((t) => /^(PARTLABEL|PARTUUID)=/.test(t));
  if (!texts.length) return undefined;
  const table = await sfdiskJson(disk.node, sys).catch(() => undefined);
  let kept: ReturnType<typeof resolveKept>;
  try {
    kept = resolveKept(
      table,
      texts.map((t) => parseSelector(t, 'keep')),
      disk.node,
    );
  } catch {
    return undefined;
  }
  // The kernel brought in line with the table (read-only work); its warnings are the flow's to give, later.
  const parts = await oldPartitions(disk, undefined, { ...log, warn: () => {} }, sys);
  for (const k of kept) {
    const uuid = k.uuid.toLowerCase();
    const p = parts.find((q) => q.partuuid === uuid);
    if (!p?.fstype || !HOME_FS.has(p.fstype) || !p.uuid) continue;
    const fsUuid = p.uuid;
    const now = async (): Promise<string> => {
      for (const l of diskLocks(o.runBase, disk)) {
        const pid = await lockHolder(l);
        if (pid !== undefined && pid !== process.pid) throw new Error(`another reimage (pid ${pid}) is running on ${disk.node}`);
      }
      const q = (await sfdiskJson(disk.node, sys))?.partitions.find((x) => (x.uuid ?? '').toLowerCase() === uuid);
      const b = q ? await blkidProbe(q.node, undefined, sys).catch(() => undefined) : undefined;
      if (!q || b?.PART_ENTRY_UUID?.toLowerCase() !== uuid || b?.UUID?.toLowerCase() !== fsUuid)
        throw new Error(`the kept partition PARTUUID=${uuid} with file system ${fsUuid} is not in ${disk.node}'s table as the kernel sees it now`);
      return q.node;
    };
    const at = (sub: string) => partitionPlace(now, `PARTUUID=${uuid}${k.name ? ` ("${k.name}")` : ''}:/${sub}`, o.runBase, sub, async (mnt) => mnt);
    return { keep: at('reimage-retained'), outbox: at(MEDIUM_OUTBOX) };
  }
  log.warn(`no kept partition of ${disk.node} named by PARTLABEL= or PARTUUID= has a file system that can hold the retained set (${[...HOME_FS].join(', ')})`);
  return undefined;
}

// urlOutbox: before a bundle by URL comes (it has no medium), the outbox on the
// kept partition of TARGET that --keep or the policy names (keptHome; the
// manifest's own `keep` is not known yet), so a refusal before the bundle is
// in (not fetched: the network is down, a bad signature) keeps its report
// there when the endpoint does not take it; what earlier runs kept there is
// sent first. Nothing for a plan, or a target that is not an idle whole disk
// (the run refuses it, and a mounted partition is not mounted again here).
export async function urlOutbox(d: Deliver | undefined, keepParts: readonly string[] | undefined, target: string, runBase: string, log: Log, sys: Sys = hostSys): Promise<void> {
  if (!d || d.medium || !keepParts?.length) return;
  const disk = await inspect(target, sys).catch(() => undefined);
  if (!disk || disk.isPartition || disk.readOnly) return;
  const idle = await refuseBusy(disk, sys).then(
    () => true,
    () => false,
  );
  if (!idle) return;
  // Its warnings are the flow's to give, with the manifest's selectors too.
  const home = await keptHome({ keepParts, runBase }, {}, disk, { ...log, warn: () => {} }, sys).catch(() => undefined);
  if (!home) return;
  d.medium = home.outbox;
  await sendKept(d, log);
}

// findResumable: a retained set an earlier run saved for this disk before it
// failed past its point of no return, when it is the answer to this run.
export async function findResumable(log: Log, pre: Preflight, sys: Sys): Promise<Resumed | undefined> {
  const { bundle, oldParts, list } = pre;
  // A re-entry record names its archive, already checked: the disk is not looked at.
  const hit = pre.reentry?.resumed ?? (await findArchive(pre.keep.places, pre.keep.key, log));
  if (!hit) return undefined;
  const a = hit.archive;
  if (pre.reentry) return checkCovered(hit, list);
  // A saved set is only the answer to a run that failed after writing: then the
  // disk holds no table (invalidated) or the new image's file systems. An
  // intact other system means the set is stale (or planted): it is not used.
  const image = new Set(bundle.manifest.table.partitions.map((p) => p.fs.uuid?.toLowerCase()).filter(Boolean));
  // A kept partition (a /home, the bundle's own) is not the old system: it survives every run.
  const kept = new Set(pre.kept.map((k) => k.uuid.toLowerCase()));
  const intact = oldParts.some((p) => p.uuid && !image.has(p.uuid.toLowerCase()) && !kept.has(p.partuuid ?? ''));
  if (intact) {
    log.warn(
      `a retained set saved on ${a.created} for this disk is in ${a.from}, but the disk holds an intact system that is not this bundle's image: it is ignored and the disk is read afresh (delete it if it is stale)`,
    );
    return undefined;
  }
  // The bundle's image on the disk with a report of success: a run completed
  // after the set was saved (or the set was copied here): it is stale.
  const done = oldParts.length ? await completedRun(bundle.manifest, oldParts, sys) : undefined;
  if (done) {
    log.warn(
      `a retained set saved on ${a.created} for this disk is in ${a.from}, but the disk holds a system a reimage completed on ${done}: the set is stale and ignored, the disk is read afresh (delete the set)`,
    );
    return undefined;
  }
  checkCovered(hit, list);
  log.warn(
    `found the retained set an earlier run saved on ${a.created} before it failed after its point of no return (${a.entries.length} entries, list ${a.list}) in ${a.from}: ` +
      `it is restored instead of reading the disk (whose old system is gone); delete that directory to capture afresh`,
  );
  return hit;
}

// checkCovered: a saved set's bytes are not signed: it may only bring back what the list in use names.
function checkCovered(hit: Resumed, list: Preflight['list']): Resumed {
  const a = hit.archive;
  const stray = a.entries.find((e) => !coveredBy(list.entries, e.path));
  if (stray) {
    throw retentionError(
      `the retained set saved in ${a.from} holds ${display(stray.path)}, which the retention list in use (${list.name}) does not name: nothing was written; run with the list it was saved with (${a.list}), or delete ${a.from} to read the disk afresh`,
    );
  }
  return hit;
}

// keepRetained: the captured set written to every keep place before anything
// is written; where it went (empty when there is nothing to keep).
export async function keepRetained(run: Run, pre: Preflight, scanned: Scanned, staged: Staged): Promise<Saved[]> {
  const { log, o } = run;
  const { disk, bundle, keep } = pre;
  const entries = staged.captured;
  if (!entries.length) return [];
  const bytes = entries.reduce((n, c) => n + (c.staged ? c.size : 0), 0);
  const meta = {
    disk: { serial: disk.serial, wwn: disk.wwn, model: disk.model, size: disk.size, ...(disk.backingFile ? { backingFile: disk.backingFile } : {}) },
    bundle: { rawSha256: bundle.manifest.raw.sha256, ...(bundle.manifest.version ? { version: bundle.manifest.version } : {}) },
    list: pre.list.name,
  };
  const { ids, resumed } = scanned;
  const { key } = keep;
  // Every lasting place gets a copy (a resumed set stays where it was found);
  // RAM only when no lasting place holds one (it costs RAM the stage already uses).
  const saved = await log.step(`save the ${entries.length} retained entries (${human(bytes)}) before writing`, async () => {
    const lasting = keep.places.filter((p) => p.survivesReboot && p !== resumed?.place);
    const got = await saveArchive(lasting, key, entries, ids, meta, log, o.signal);
    if (resumed) got.unshift({ where: resumed.archive.from, survivesReboot: resumed.place.survivesReboot });
    if (got.some((s) => s.survivesReboot)) return got;
    const ram = keep.places.filter((p) => !p.survivesReboot && p !== resumed?.place);
    return [...got, ...(await saveArchive(ram, key, entries, ids, meta, log, o.signal))];
  });
  if (!saved.length) {
    throw new ReimageError(
      'environment',
      `the ${entries.length} retained entries could not be saved anywhere before writing (see the warnings above): nothing was written; give --keep-dir DIR on a writable disk other than the target`,
    );
  }
  const lasting = saved.filter((s) => s.survivesReboot);
  if (lasting.length) log.info(`retained set saved in ${lasting.map((s) => s.where).join(' and ')}: if anything fails from here on, running the same command again restores it`);
  else
    log.warn(
      `the retained set is saved only in RAM (${saved.map((s) => s.where).join(', ')}): a power cut during the write would lose it; give --keep-dir on another disk, or keep a partition of the target (--keep), to keep it safe`,
    );
  return saved;
}

// dropKept: every entry came back, so the saved set is no longer needed.
export async function dropKept(log: Log, keep: KeepAt, saved: readonly Saved[], resumed: Resumed | undefined): Promise<void> {
  if (saved.length || resumed) await dropArchive(keep.places, keep.key, log);
}

// keepReport: after a failure past the point of no return, the report (which
// entries did not come back and why) saved beside the retained set.
export async function keepReport(log: Log, keep: KeepAt, saved: readonly Saved[], report: unknown): Promise<void> {
  if (!saved.length) return;
  await annotate(keep.places, keep.key, 'report.json', JSON.stringify(report, null, 2) + '\n', log);
}

// savedAsFound: a saved set's entries as the RAM budget counts scanned ones
// (dense, one page-rounded file per staged entry; the rest costs no pages).
export function savedAsFound(entries: readonly Captured[]): Found[] {
  return entries.map((c) => ({
    path: c.path,
    host: c.path,
    kind: c.kind,
    line: c.line,
    sparse: false,
    st: { size: BigInt(c.size), blksize: 4096n, blocks: BigInt(Math.ceil(c.size / 512)) } as BigIntStats,
    ...(c.kind === 'file' && !c.staged ? { linkOf: c.path } : {}),
  }));
}

// completedRun: when the disk's root file system (the manifest's /) carries a
// report of a successful reimage, its finish time. Read with debugfs (ext2/3/4),
// nothing mounted; other file systems cannot tell (undefined).
async function completedRun(m: Manifest, parts: PartIdentity[], sys: Sys): Promise<string | undefined> {
  const root = m.mounts.find((x) => x.path === '/');
  const p = root && findPart(parts, root.spec.kind, root.spec.value)[0];
  if (!p || !p.fstype?.startsWith('ext')) return undefined;
  const text = await debugfsCat(p.node, 0, `${REPORT_DIR}/report.json`, sys).catch(() => undefined);
  try {
    const r = JSON.parse(text ?? '') as { outcome?: unknown; finished?: unknown };
    return r.outcome === 'success' ? String(r.finished ?? 'an unknown date') : undefined;
  } catch {
    return undefined;
  }
}
