// Mounting a system from a mount plan onto a directory tree, restricted to the
// partitions of the target disk. The old system is mounted read-only without
// journal replay (a plain `ro` mount of ext4/xfs still writes the journal) and
// from a partition device set read-only (ext4 records errors in its superblock
// even when mounted read-only), so a failure before the point of no return
// leaves the disk byte-identical, and nosuid,nodev,noexec: it is data to read,
// never code or devices to use. Every mount point is found inside its root
// without following a symlink (retention/inroot.ts mountPoint), so no mount
// lands outside the root.
import { mkdir, rmdir } from 'node:fs/promises';
import type { Manifest, Mount, SpecKind } from '../bundle/manifest.ts';
import { ReimageError, type ExitName, usageError } from '../errors.ts';
import { mountPoint } from '../retention/inroot.ts';
import { holdReadOnly, mount, umount } from '../system/tools.ts';
import { hostSys, type Sys } from '../system/sys.ts';
import type { PartIdentity } from '../target/partitions.ts';
import type { Cleanup } from '../util/cleanup.ts';
import { container } from '../util/containers.ts';
import { lvPath, parentsFirst, parseSpec } from '../util/fstab.ts';
import { activate } from './lvm.ts';
import { duplicateMountPath, mountPathProblem } from '../util/mountpath.ts';
import { readOnlyOptions } from '../util/mountopts.ts';

// options: which part of the file system (btrfs subvol=/subvolid=), from the
// manifest. Kind LV: a logical volume by name (value VG/LV); lv: the line must
// also be on that logical volume.
export type PlanLine = { path: string; kind: SpecKind | 'LV'; value: string; fstype: string; options?: string; lv?: string };
// A line that could not be mounted, and why (for the warning).
export type Missing = PlanLine & { why?: string };

const KEY: Record<SpecKind | 'LV', keyof PartIdentity> = { LABEL: 'label', PARTLABEL: 'partlabel', UUID: 'uuid', PARTUUID: 'partuuid', LV: 'lv' };

export function findPart(parts: PartIdentity[], kind: SpecKind | 'LV', value: string, lv?: string): PartIdentity[] {
  const v = kind === 'UUID' || kind === 'PARTUUID' ? value.toLowerCase() : value;
  return parts.filter((p) => p[KEY[kind]] === v && (lv === undefined || p.lv === lv));
}

// lvOf: VG/LV of a manifest mount on a logical volume, or undefined.
const lvOf = (m: Manifest, x: Mount) => {
  const vg = x.lv ? m.table.partitions.find((q) => q.number === x.partition)?.lvm?.vg : undefined;
  return vg && x.lv ? `${vg}/${x.lv}` : undefined;
};

// newPlan: the manifest's plan as written (exact identities of the new image).
export const newPlan = (m: Manifest): PlanLine[] =>
  m.mounts.map((x: Mount) => {
    const lv = lvOf(m, x);
    return { path: x.path, kind: x.spec.kind, value: x.spec.value, fstype: x.fstype, ...(x.options ? { options: x.options } : {}), ...(lv ? { lv } : {}) };
  });

// oldPlan: the same mount points found on the old system by label (UUIDs
// change between images, labels usually do not), or as overridden.
export function oldPlan(m: Manifest, overrides: readonly string[]): PlanLine[] {
  if (overrides.length) {
    const lines = overrides.map((f) => {
      const mm = /^(.+?):(\/.*)$/.exec(f);
      const lv = mm ? lvPath(mm[1]!) : undefined;
      const spec = mm ? (parseSpec(mm[1]!) ?? (lv ? { kind: 'LV' as const, value: lv } : undefined)) : undefined;
      if (!mm || !spec) throw usageError(`--old-mount "${f}" is not SPEC:PATH; write e.g. --old-mount LABEL=root:/ or --old-mount /dev/VG/LV:/`);
      const why = mountPathProblem(mm[2]!);
      if (why) throw usageError(`--old-mount "${f}": the path ${why}; write a normalised absolute path such as /boot/efi`);
      return { path: mm[2]!, ...spec, fstype: 'auto' };
    });
    const dup = duplicateMountPath(lines.map((l) => l.path));
    if (dup) throw usageError(`--old-mount names ${dup} twice: give one partition per mount point`);
    return lines;
  }
  // The image's subvolume options; stages/subvols.ts replaces them by the old system's own (its fstab).
  return m.mounts.map((x) => {
    const p = m.table.partitions.find((q) => q.number === x.partition);
    const opt = x.options ? { options: x.options } : {};
    // A logical volume: its file system's label, else the same VG/LV name on the old disk.
    const lv = lvOf(m, x);
    const label = p?.lvm?.lvs.find((l) => l.name === x.lv)?.fs.label;
    if (lv) return label ? { path: x.path, kind: 'LABEL' as const, value: label, fstype: x.fstype, ...opt } : { path: x.path, kind: 'LV' as const, value: lv, fstype: x.fstype, ...opt };
    if (p?.fs.label) return { path: x.path, kind: 'LABEL' as const, value: p.fs.label, fstype: x.fstype, ...opt };
    if (p?.name) return { path: x.path, kind: 'PARTLABEL' as const, value: p.name, fstype: x.fstype, ...opt };
    return { path: x.path, kind: x.spec.kind, value: x.spec.value, fstype: x.fstype, ...opt };
  });
}

// mountPlan: mount each line (parents first) under `base`; returns the lines
// that could not be found. Every mount is undone by the cleanup stack.
// A mount point that is (or passes through) a symlink, or is not a directory:
// on the old system (untrusted, read-only, so nothing can be created) the line
// is treated as not found, with the reason, and its files are read from the
// file system below, resolved in-root like any other path; on the new system
// (the signed image, written by us) it is a broken image and refused. Missing
// directories are created only in the new system.
export async function mountPlan(
  parts: PartIdentity[],
  plan: PlanLine[],
  base: string,
  mode: 'ro' | 'rw',
  cleanup: Cleanup,
  exit: ExitName,
  sys: Sys = hostSys,
  notes: string[] = [],
): Promise<{ missing: Missing[]; umountAll: () => Promise<void> }> {
  const missing: Missing[] = [];
  const undo: (() => Promise<void>)[] = [];
  await mkdir(base, { recursive: true });
  // Logical volumes first (taken down last): the plan may name them, by VG/LV or by their file systems' identity.
  const lvm = await activate(parts, mode, exit, cleanup, notes, sys);
  const all = [...parts, ...lvm.parts];
  for (const line of parentsFirst(plan)) {
    const hits = findPart(all, line.kind, line.value, line.lv);
    if (hits.length > 1)
      throw new ReimageError(exit, `${line.kind}=${line.value} (for ${line.path}) matches ${hits.length} partitions of the target: give each partition a unique label, or use --old-mount`);
    const p = hits[0];
    if (!p) {
      missing.push(line);
      continue;
    }
    const held = container(p.fstype);
    if (held) {
      const sys = mode === 'ro' ? 'old system' : 'new image';
      const fix = mode === 'ro' ? 'reimage with an empty retention list (nothing kept)' : 'pack an image whose file systems are on plain partitions';
      throw new ReimageError(exit, `the ${sys}'s ${line.path} (${line.kind}=${line.value}) is ${p.node}, which is ${held.what}: ${held.why}; ${fix}`);
    }
    const at = await mountPoint(base, line.path, mode === 'rw');
    if ('why' in at) {
      if (mode === 'rw')
        throw new ReimageError(exit, `the new image's mount point for ${line.kind}=${line.value}: ${at.why}; mount points must be real directories inside the image: fix the image and pack it again`);
      missing.push({ ...line, why: `old system: ${line.kind}=${line.value} not mounted at ${line.path}: ${at.why}` });
      continue;
    }
    const dir = at.host;
    const fstype = p.fstype ?? line.fstype;
    if (mode === 'ro') {
      // ro mount options alone still let ext4 write its error record when a retained entry is corrupt.
      undo.push(cleanup.push(`put ${p.node}'s read-only flag back`, await holdReadOnly(p.node, sys)));
    }
    const pick = line.options ? `,${line.options}` : '';
    await mount(p.node, dir, fstype, `${mode === 'ro' ? readOnlyOptions(fstype) : 'rw'}${pick}`, sys);
    undo.push(cleanup.push(`umount ${dir}`, () => umount(dir, sys)));
  }
  const umountAll = async () => {
    for (const u of undo.reverse()) await u();
    await rmdir(base).catch(() => {});
    await lvm.deactivate();
  };
  return { missing, umountAll };
}
