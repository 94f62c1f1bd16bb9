// A keep place on a partition reimage opens itself (the bundle's medium, a
// kept partition of the target): mounted only while it is open — read-only
// for a look (finding a set or a record writes nothing, before the point of
// no return and in a plan), read-write (nosuid, nodev, noexec) to write — on a
// mount point of its own below the run base (runs on other disks go on at the
// same time), and synced before it is unmounted. NODE says where the partition
// is when it is opened (a kept partition may have another number once the
// image's table is in). The directory that holds the place's SUB is settled
// once the file system is mounted (BASE), and SUB itself must not be a link:
// a "lasting" place never lands in RAM or elsewhere.
import { lstat, mkdir, mkdtemp, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeepPlace } from './archive.ts';
import { blkidProbe, mount, syncAll, umount } from '../system/tools.ts';

export function partitionPlace(node: string | (() => Promise<string>), name: string, runBase: string, sub: string, base: (mnt: string) => Promise<string>): KeepPlace {
  return {
    name,
    survivesReboot: true,
    ...(typeof node === 'string' ? { device: node } : {}),
    open: async (write = true) => {
      const at = typeof node === 'string' ? node : await node();
      const fs = (await blkidProbe(at)).TYPE;
      if (!fs) throw new Error(`${at} has no file system`);
      await mkdir(runBase, { recursive: true });
      const mnt = await mkdtemp(join(runBase, 'keep-'));
      try {
        // A file system whose log needs replaying after a cut (XFS refuses that read-only) is mounted read-write to be looked at.
        await mount(at, mnt, fs, `${write ? 'rw' : 'ro'},nosuid,nodev,noexec`).catch(async (e: unknown) => {
          if (write) throw e;
          await mount(at, mnt, fs, 'rw,nosuid,nodev,noexec');
        });
      } catch (e) {
        await rmdir(mnt).catch(() => {});
        throw e;
      }
      const close = async () => {
        if (write) await syncAll();
        await umount(mnt);
        await rmdir(mnt).catch(() => {});
      };
      try {
        const dir = join(await base(mnt), sub);
        const st = await lstat(dir).catch(() => undefined);
        if (st && !st.isDirectory()) throw new Error(`${dir.slice(mnt.length)} on ${at} is not a directory (a link?): remove it`);
        return { dir, close };
      } catch (e) {
        await close();
        throw e;
      }
    },
  };
}
