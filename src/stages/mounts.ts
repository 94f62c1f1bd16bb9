// Mounting a system from a mount plan onto a directory tree, restricted to the
// partitions of the target disk. The old system is mounted read-only without
// journal replay (a plain `ro` mount of ext4/xfs still writes the journal) and
// from a partition device set read-only (ext4 records errors in its superblock
// even when mounted read-only), so a failure before the point of no return
// leaves the disk byte-identical.
import { mkdir, rmdir } from 'node:fs/promises';
import type { Manifest, Mount, SpecKind } from '../bundle/manifest.ts';
import { ReimageError, type ExitName, usageError } from '../errors.ts';
import { mount, setReadOnly, umount } from '../system/tools.ts';
import type { PartIdentity } from '../target/partitions.ts';
import type { Cleanup } from '../util/cleanup.ts';
import { parentsFirst, parseSpec } from '../util/fstab.ts';

export type PlanLine = { path: string; kind: SpecKind; value: string; fstype: string };

const KEY: Record<SpecKind, keyof PartIdentity> = { LABEL: 'label', PARTLABEL: 'partlabel', UUID: 'uuid', PARTUUID: 'partuuid' };

export function findPart(parts: PartIdentity[], kind: SpecKind, value: string): PartIdentity[] {
  const v = kind === 'UUID' || kind === 'PARTUUID' ? value.toLowerCase() : value;
  return parts.filter((p) => p[KEY[kind]] === v);
}

const READ_ONLY: Record<string, string> = { ext2: 'ro', ext3: 'ro,noload', ext4: 'ro,noload', xfs: 'ro,norecovery', btrfs: 'ro,rescue=nologreplay' };

// readOnlyOptions: mount options that read a file system without writing a byte (no journal replay).
export const readOnlyOptions = (fstype: string) => READ_ONLY[fstype] ?? 'ro';

// newPlan: the manifest's plan as written (exact identities of the new image).
export const newPlan = (m: Manifest): PlanLine[] => m.mounts.map((x: Mount) => ({ path: x.path, kind: x.spec.kind, value: x.spec.value, fstype: x.fstype }));

// oldPlan: the same mount points found on the old system by label (UUIDs
// change between images, labels usually do not), or as overridden.
export function oldPlan(m: Manifest, overrides: readonly string[]): PlanLine[] {
  if (overrides.length) {
    return overrides.map((f) => {
      const mm = /^(.+?):(\/.*)$/.exec(f);
      const spec = mm ? parseSpec(mm[1]!) : undefined;
      if (!mm || !spec) throw usageError(`--old-mount "${f}" is not SPEC:PATH; write e.g. --old-mount LABEL=root:/`);
      return { path: mm[2]!, ...spec, fstype: 'auto' };
    });
  }
  return m.mounts.map((x) => {
    const p = m.table.partitions.find((q) => q.number === x.partition);
    if (p?.fs.label) return { path: x.path, kind: 'LABEL' as const, value: p.fs.label, fstype: x.fstype };
    if (p?.name) return { path: x.path, kind: 'PARTLABEL' as const, value: p.name, fstype: x.fstype };
    return { path: x.path, kind: x.spec.kind, value: x.spec.value, fstype: x.fstype };
  });
}

// mountPlan: mount each line (parents first) under `base`; returns the lines
// that could not be found. Every mount is undone by the cleanup stack.
export async function mountPlan(
  parts: PartIdentity[],
  plan: PlanLine[],
  base: string,
  mode: 'ro' | 'rw',
  cleanup: Cleanup,
  exit: ExitName,
): Promise<{ missing: PlanLine[]; umountAll: () => Promise<void> }> {
  const missing: PlanLine[] = [];
  const undo: (() => Promise<void>)[] = [];
  await mkdir(base, { recursive: true });
  for (const line of parentsFirst(plan)) {
    const hits = findPart(parts, line.kind, line.value);
    if (hits.length > 1) throw new ReimageError(exit, `${line.kind}=${line.value} (for ${line.path}) matches ${hits.length} partitions of the target: give each partition a unique label, or use --old-mount`);
    const p = hits[0];
    if (!p) {
      missing.push(line);
      continue;
    }
    const dir = base + (line.path === '/' ? '' : line.path);
    // A mount point missing in a read-only parent cannot be made: treat the line as not found.
    if (!(await mkdir(dir, { recursive: true }).then(() => true, () => false))) {
      missing.push(line);
      continue;
    }
    const fstype = p.fstype ?? line.fstype;
    if (mode === 'ro') {
      // ro mount options alone still let ext4 write its error record when a retained entry is corrupt.
      await setReadOnly(p.node, true);
      undo.push(cleanup.push(`make ${p.node} writable again`, () => setReadOnly(p.node, false)));
    }
    await mount(p.node, dir, fstype, mode === 'ro' ? readOnlyOptions(fstype) : 'rw');
    undo.push(cleanup.push(`umount ${dir}`, () => umount(dir)));
  }
  const umountAll = async () => {
    for (const u of undo.reverse()) await u();
    await rmdir(base).catch(() => {});
  };
  return { missing, umountAll };
}
