// A bundle on a block device named by identity (`LABEL=REIMAGE:/bundle`,
// `UUID=`, `PARTLABEL=`, `PARTUUID=`, `/dev/disk/by-*/…:/dir`): the one
// device carrying it is found (boot/locate.ts: waited for, twins refused),
// mounted read-only and untrusted, and the bundle path resolved inside the
// medium as in a chroot; a bundle file that is a symlink is refused. Its
// files are then read like a directory's; closing unmounts it, so the disk
// it came from can be the target.
import { mkdir, rmdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { bundleError } from '../errors.ts';
import { findDevice, parentDisk, parseLocation } from '../boot/locate.ts';
import { readOnlyOptions } from '../util/mountopts.ts';
import { resolveInRoot } from '../retention/inroot.ts';
import { blkidProbe, mount, umount } from '../system/tools.ts';
import { fromUtf8 } from '../util/bytes.ts';
import { dirReader } from './dir.ts';
import type { SourceKind } from './types.ts';

export const deviceKind = {
  forms: 'LABEL=…:/dir, UUID=…:/dir, PARTLABEL=…, PARTUUID=… or /dev/disk/by-…/…:/dir',
  matches: (spec) => /^(LABEL|UUID|PARTLABEL|PARTUUID)=/.test(spec) || spec.startsWith('/dev/'),
  open: async (spec, env) => {
    const loc = parseLocation(spec);
    const source = await findDevice(loc, env.log, env.waitSeconds ?? 60);
    const fs = (await blkidProbe(source)).TYPE;
    if (!fs) throw bundleError(`the bundle device ${source} has no file system reimage can mount`);
    const src = join(env.runBase, 'bundle-src');
    await mkdir(src, { recursive: true });
    await mount(source, src, fs, readOnlyOptions(fs));
    const unmount = env.cleanup.push(`umount ${src}`, async () => {
      await umount(src);
      await rmdir(src).catch(() => {});
    });
    try {
      const where = Buffer.from(await resolveInRoot(src, fromUtf8(loc.path)), 'latin1').toString('utf8');
      const st = await stat(where).catch(() => undefined);
      if (!st) throw bundleError(`there is no ${loc.path} on the bundle device ${source}: check rd.reimage.bundle=`);
      const disk = await parentDisk(source);
      return { ...dirReader(st.isDirectory() ? where : dirname(where), source, env, true), device: { source, ...(disk ? { disk } : {}) }, close: unmount };
    } catch (e) {
      await unmount();
      throw e;
    }
  },
} satisfies SourceKind;
