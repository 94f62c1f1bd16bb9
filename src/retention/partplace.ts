// A keep place on a partition reimage opens itself (the bundle's medium, a
// kept partition of the target): mounted read-write (nosuid, nodev, noexec)
// only while it is open, at the run's keep-dst, and synced before it is
// unmounted. The directory that holds the place's SUB is settled once the
// file system is mounted (BASE), and SUB itself must not be a link: a
// "lasting" place never lands in RAM or elsewhere.
import { lstat, mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeepPlace } from './archive.ts';
import { blkidProbe, mount, syncAll, umount } from '../system/tools.ts';

export function partitionPlace(node: string, name: string, runBase: string, sub: string, base: (mnt: string) => Promise<string>): KeepPlace {
  return {
    name,
    survivesReboot: true,
    device: node,
    open: async () => {
      const fs = (await blkidProbe(node)).TYPE;
      if (!fs) throw new Error(`${node} has no file system`);
      const mnt = join(runBase, 'keep-dst');
      await mkdir(mnt, { recursive: true });
      await mount(node, mnt, fs, 'rw,nosuid,nodev,noexec');
      const close = async () => {
        await syncAll();
        await umount(mnt);
        await rmdir(mnt).catch(() => {});
      };
      try {
        const dir = join(await base(mnt), sub);
        const st = await lstat(dir).catch(() => undefined);
        if (st && !st.isDirectory()) throw new Error(`${dir.slice(mnt.length)} on ${node} is not a directory (a link?): remove it`);
        return { dir, close };
      } catch (e) {
        await close();
        throw e;
      }
    },
  };
}
