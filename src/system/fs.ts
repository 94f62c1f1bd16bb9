// File-system verbs: mount, umount, sync, findmnt, debugfs, e2fsck/resize2fs,
// mkfs.ext4, cp --sparse.
import { runVia, type Via } from './exec.ts';

// mount: SOURCE on DIR as FSTYPE with OPTIONS (exit default: target).
export async function mount(source: string, dir: string, fstype: string, options: string, v: Via = {}): Promise<void> {
  await runVia(v)('mount', ['-t', fstype, '-o', options, source, dir], { exit: v.exit ?? 'target' });
}

// umount: DIR (exit default: environment).
export async function umount(dir: string, v: Via = {}): Promise<void> {
  await runVia(v)('umount', [dir], { exit: v.exit ?? 'environment' });
}

// syncAll: every file system's dirty data on its disk (sync(1); exit default: environment).
export async function syncAll(v: Via = {}): Promise<void> {
  await runVia(v)('sync', [], { exit: v.exit ?? 'environment' });
}

export type MountOf = { fstype: string; source: string; target: string; uuid: string };

// findMount: the mounted file system that holds PATH (findmnt --target; exit default: environment).
export async function findMount(path: string, v: Via = {}): Promise<MountOf> {
  const out = await runVia(v)('findmnt', ['-n', '-o', 'FSTYPE,SOURCE,TARGET,UUID', '--target', path], { exit: v.exit ?? 'environment' });
  const [fstype = '', source = '', target = '', uuid = ''] = out.stdout.trim().split(/\s+/);
  return { fstype, source, target, uuid };
}

// debugfsCat: a file's bytes from an ext2/3/4 file system inside an image, without mounting (exit default: environment).
export async function debugfsCat(image: string, offset: number, path: string, v: Via = {}): Promise<string | undefined> {
  const out = await runVia(v)('debugfs', ['-R', `cat ${path}`, `${image}?offset=${offset}`], { okCodes: [0], exit: v.exit ?? 'environment' });
  // debugfs prints errors on stderr and exits 0; an empty stdout with an error means "not there".
  if (!out.stdout && /not found|File not found|Bad magic/i.test(out.stderr)) return undefined;
  return out.stdout;
}

// growExt: check then grow an ext2/3/4 file system to fill its partition (exit default: afterWrite).
export async function growExt(node: string, v: Via = {}): Promise<void> {
  await runVia(v)('e2fsck', ['-f', '-p', node], { okCodes: [0, 1], exit: v.exit ?? 'afterWrite', timeoutMs: 3600_000 });
  await runVia(v)('resize2fs', [node], { exit: v.exit ?? 'afterWrite', timeoutMs: 3600_000 });
}

// mkfsExtFrom: an ext4 file system labelled LABEL filled from directory TREE,
// MIB MiB long at byte OFFSET of IMAGE (no root, no loop device; exit default: environment).
export async function mkfsExtFrom(image: string, label: string, tree: string, offset: number, mib: number, v: Via = {}): Promise<void> {
  await runVia(v)('mkfs.ext4', ['-q', '-L', label, '-d', tree, '-E', `offset=${offset}`, image, `${mib}M`], { timeoutMs: 600_000, exit: v.exit ?? 'environment' });
}

// copySparse: copy a (disk image) file keeping its holes (exit default: environment).
export async function copySparse(from: string, to: string, v: Via = {}): Promise<void> {
  await runVia(v)('cp', ['--sparse=always', from, to], { timeoutMs: 3600_000, exit: v.exit ?? 'environment' });
}

// mkfsExt4: a new, empty ext4 file system labelled LABEL with the UUID on the block device NODE (exit default: environment).
export async function mkfsExt4(node: string, label: string, uuid: string, v: Via = {}): Promise<void> {
  await runVia(v)('mkfs.ext4', ['-q', '-F', '-L', label, '-U', uuid, node], { timeoutMs: 600_000, exit: v.exit ?? 'environment' });
}

// debugfsDump: a file of an ext2/3/4 file system at OFFSET of IMAGE copied out byte-exact to DEST, without mounting; false when it is not there.
export async function debugfsDump(image: string, offset: number, path: string, dest: string, v: Via = {}): Promise<boolean> {
  const out = await runVia(v)('debugfs', ['-R', `dump ${path} ${dest}`, `${image}?offset=${offset}`], { okCodes: [0, 1], exit: v.exit ?? 'environment' });
  return out.exitCode === 0 && !/not found|Bad magic|Couldn't|error/i.test(out.stderr);
}
