// A text file (the image's /etc/fstab) read from a file system inside a raw
// disk image, at pack time. ext2/3/4: `debugfs` reads it without mounting (no
// root needed). XFS and btrfs have no such reader: `xfs_db` prints inodes and
// blocks but no file's bytes, and `btrfs restore` copies whole trees out. So
// those are mounted read-only through a loop device over the partition's byte
// range, with no log recovery (`norecovery`, `rescue=nologreplay`): the image
// file is never written, and pack needs root for these kinds only. On btrfs
// the top level (subvolid=5) is mounted, and the file is also looked for one
// level down, inside each subvolume (`@/etc/fstab`).
import { mkdtemp, readdir, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleError } from '../errors.ts';
import { readInRoot, resolveInRoot } from '../retention/inroot.ts';
import { debugfsCat, mount, umount } from '../system/tools.ts';
import { bpath } from '../util/bytes.ts';
import { readOnlyOptions } from '../util/mountopts.ts';

// Where the file may be, relative to the mounted file system, for the kinds that are mounted.
// (Options: util/mountopts.ts; on btrfs the top level, subvolid=5.)
const MOUNTED: Record<string, { options: string; nested: boolean }> = {
  xfs: { options: '', nested: false },
  btrfs: { options: 'subvolid=5', nested: true },
};

// canPeek: whether a file can be read from a file system of this type.
export const canPeek = (fstype: string | undefined) => !!fstype && (fstype.startsWith('ext') || Object.hasOwn(MOUNTED, fstype));

// peek: FILE (absolute) from the file system of TYPE at [offset, offset + size) of IMAGE, or undefined when it is not there.
export async function peek(image: string, part: { number: number; offset: number; size: number; fstype: string }, file: string): Promise<string | undefined> {
  if (part.fstype.startsWith('ext')) return debugfsCat(image, part.offset, file);
  if (!Object.hasOwn(MOUNTED, part.fstype)) return undefined;
  return readMounted(image, part.fstype, `loop,offset=${part.offset},sizelimit=${part.size}`, file).catch((e: Error) => {
    throw bundleError(
      `partition ${part.number} (${part.fstype}) of ${image} cannot be mounted read-only to read ${file} (${e.message}): run reimage pack as root, or give the mount plan with --mount SPEC:PATH`,
    );
  });
}

// readMounted: FILE from SOURCE (a block device, or an image with loop
// options in EXTRA) mounted read-only without log recovery on a temporary
// directory, or undefined when it is not there. Rejects when SOURCE cannot be mounted.
export async function readMounted(source: string, fstype: string, extra: string, file: string): Promise<string | undefined> {
  const how = Object.hasOwn(MOUNTED, fstype) ? MOUNTED[fstype] : undefined;
  if (!how) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'reimage-peek-'));
  try {
    await mount(source, dir, fstype, [readOnlyOptions(fstype), how.options, extra].filter(Boolean).join(','));
    try {
      const at = (rel: string) => readConfined(rel === '.' ? dir : join(dir, rel), file);
      const top = await at('.');
      if (top !== undefined || !how.nested) return top;
      for (const sub of (await readdir(dir, { withFileTypes: true }))
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort()) {
        const text = await at(sub);
        if (text !== undefined) return text;
      }
      return undefined;
    } finally {
      await umount(dir);
    }
  } finally {
    await rmdir(dir).catch(() => {});
  }
}

// readConfined: FILE inside ROOT (a mounted, untrusted file system) with its
// symlinks resolved inside ROOT as a chroot would: a link to the host's
// /dev/zero, a FIFO or `../../..` never reaches outside it. Undefined when
// missing; rejects (naming why) when it is there but not a small regular file.
async function readConfined(root: string, file: string): Promise<string | undefined> {
  const inRoot = (await resolveInRoot(root, bpath(file))).slice(root.length);
  if (!inRoot || inRoot === '/') return undefined;
  const got = await readInRoot(root, bpath(inRoot));
  if (got.why !== undefined) throw new Error(inRoot === file ? got.why : `${file} resolves to ${inRoot} inside the file system, and ${got.why}`);
  return got.bytes?.toString('utf8');
}
