// Can the running kernel mount the new system's file systems? The type must be
// in /proc/filesystems or loadable (an `fs-TYPE` alias in the modules.alias of
// /lib/modules/$(uname -r)), and every ext2/3/4 feature the manifest records
// that matters for a read-write mount (incompat and ro_compat; compat features
// never stop a mount) must be supported: by /sys/fs/ext4/features where the
// kernel lists the feature there (config-dependent ones: encryption, casefold,
// verity, metadata_csum_seed), otherwise by the kernel version that first
// accepted it. The initramfs runs the *old* kernel (`arm` boots it), so an image
// made with a newer mkfs is found here, before anything is written. No
// processes: file reads only, every root injectable for tests.
import { readFile, readdir } from 'node:fs/promises';
// What the check needs of a manifest: where each file system mounts, its type and ext features.
type Manifest = {
  mounts: readonly { path: string; partition: number; fstype: string }[];
  table: { partitions: readonly { number: number; fs: { type?: string; features?: readonly string[] } }[] };
};
import { ReimageError } from '../errors.ts';
import { hostSys, type Sys } from '../system/sys.ts';
import { FEATURE_BITS } from '../image/extfs.ts';

export type KernelRoots = { proc: string; sys: string; modules: string };
// kernelRoots: the roots of SYS (the host's: /proc, /sys, /lib/modules).
export const kernelRoots = (sys: Sys): KernelRoots => ({ proc: sys.procRoot, sys: sys.sysRoot, modules: sys.modulesRoot });

export type KernelFacts = { release: string; filesystems: Set<string>; aliases: Set<string>; ext4Features?: Set<string> };

// First kernel whose fs/ext4 (or ext2/ext3 before it) accepted each incompat /
// ro_compat feature read-write: from the feature masks EXT4_FEATURE_*_SUPP in
// fs/ext4/ext4.h over the kernel's git history, cross-checked with
// Documentation/filesystems/ext4/super.rst and the ext4 wiki's feature list
// (ext4.wiki.kernel.org). 2.6.28 is ext4's first stable release (no older kernel
// is a realistic initramfs). null: no mainline kernel mounts it read-write.
export const EXT_FEATURE_SINCE: Record<string, string | null> = {
  compression: null,
  filetype: '2.2',
  needs_recovery: '2.6.28',
  journal_dev: null,
  meta_bg: '2.6.28',
  extent: '2.6.28',
  '64bit': '2.6.28',
  mmp: '3.0',
  flex_bg: '2.6.28',
  ea_inode: '4.13',
  dirdata: null,
  metadata_csum_seed: '4.4',
  large_dir: '4.13',
  inline_data: '3.8',
  encrypt: '4.1',
  casefold: '5.2',
  sparse_super: '2.2',
  large_file: '2.2',
  btree_dir: null,
  huge_file: '2.6.28',
  uninit_bg: '2.6.28',
  dir_nlink: '2.6.28',
  extra_isize: '2.6.28',
  snapshot: null,
  quota: '3.6',
  bigalloc: '3.2',
  metadata_csum: '3.18',
  replica: null,
  'read-only': null,
  project: '4.5',
  shared_blocks: null,
  verity: '5.4',
  orphan_present: '5.15',
};
// Features the kernel lists in /sys/fs/ext4/features when built with them (name there).
const SYSFS_NAME: Record<string, string> = { encrypt: 'encryption', casefold: 'casefold', metadata_csum_seed: 'metadata_csum_seed', verity: 'verity' };
const HARMLESS = new Set(Object.values(FEATURE_BITS.compat));

const read = (p: string) => readFile(p, 'utf8').catch(() => '');

// readKernel: what the running kernel offers, from ROOTS.
export async function readKernel(roots: KernelRoots = kernelRoots(hostSys)): Promise<KernelFacts> {
  const release = (await read(`${roots.proc}/sys/kernel/osrelease`)).trim();
  const filesystems = new Set(
    (await read(`${roots.proc}/filesystems`))
      .split('\n')
      .map((l) => l.split('\t').pop()?.trim() ?? '')
      .filter(Boolean),
  );
  const aliases = new Set<string>();
  for (const line of (await read(`${roots.modules}/${release}/modules.alias`)).split('\n')) {
    const m = /^alias fs-(\S+) /.exec(line);
    if (m) aliases.add(m[1]!);
  }
  const feats = await readdir(`${roots.sys}/fs/ext4/features`).catch(() => undefined);
  return { release, filesystems, aliases, ...(feats ? { ext4Features: new Set(feats) } : {}) };
}

const version = (s: string) => (/^(\d+)\.(\d+)(?:\.(\d+))?/.exec(s) ?? []).slice(1, 4).map((x) => Number(x ?? 0));
// atLeast: whether kernel release R is at least version V ("5.2").
export function atLeast(r: string, v: string): boolean {
  const a = version(r);
  const b = version(v);
  if (a.length === 0) return true;
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

// featureProblem: why kernel K cannot mount an ext file system with feature F, or undefined.
export function featureProblem(f: string, k: KernelFacts): string | undefined {
  if (HARMLESS.has(f)) return undefined;
  const sys = SYSFS_NAME[f];
  if (sys && k.ext4Features) return k.ext4Features.has(sys) ? undefined : `/sys/fs/ext4/features has no ${sys}: the kernel was built without it`;
  if (!(f in EXT_FEATURE_SINCE)) return 'reimage does not know this feature, so it cannot tell whether any kernel mounts it';
  const since = EXT_FEATURE_SINCE[f];
  if (since === null || since === undefined) return 'no mainline kernel mounts it read-write';
  return atLeast(k.release, since) ? undefined : `it needs Linux ${since} or later`;
}

// kernelRefusal: the first new-system file system the kernel cannot mount read-write, as one sentence, or undefined.
export function kernelRefusal(m: Manifest, k: KernelFacts): string | undefined {
  for (const mount of m.mounts) {
    const p = m.table.partitions.find((x) => x.number === mount.partition);
    const type = mount.fstype;
    const at = `partition ${mount.partition} of the image (${mount.path})`;
    if (!k.filesystems.has(type) && !k.aliases.has(type)) {
      return `${at} holds a ${type} file system, which the running kernel ${k.release || '(unknown release)'} cannot mount: /proc/filesystems does not list it and no module provides it; boot reimage with a kernel (initrd) that has ${type}`;
    }
    if (!type.startsWith('ext')) continue;
    for (const f of p?.fs.features ?? []) {
      const why = featureProblem(f, k);
      if (why)
        return `${at} has the ext4 feature "${f}", which the running kernel ${k.release || '(unknown release)'} cannot mount (${why}): boot reimage with a kernel that supports it, or build the image without it (tune2fs -O ^${f})`;
    }
  }
  return undefined;
}

// checkKernel: refuse (exit 8, environment) a bundle whose new file systems this kernel cannot mount.
export async function checkKernel(m: Manifest, sys: Sys = hostSys): Promise<void> {
  const why = kernelRefusal(m, await readKernel(kernelRoots(sys)));
  if (why) throw new ReimageError('environment', why);
}
