// Keep places in the initramfs: the bundle's medium (a USB stick, a rescue
// partition) when it is not the target disk, mounted read-write only for the
// moment the retained set is written, found or removed; and the run directory
// in RAM, which does not survive a reboot but serves a rerun in the same boot.
import { lstat, mkdir, rmdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { dirPlace, type KeepPlace } from '../retention/archive.ts';
import { blkidProbe, mount, syncAll, umount } from '../system/tools.ts';
import { parseLocation } from './locate.ts';
import { resolveInRoot } from '../retention/inroot.ts';
import { fromUtf8 } from '../util/bytes.ts';

// bootPlaces: where the initramfs flow keeps the retained set.
// A bundle that came from no block device (a URL) leaves RAM only.
// On the target disk the medium is a kept partition (stages/kept.ts keeps
// the partition the bundle came from, or refuses the run), so it lasts too.
export function bootPlaces(fetched: { source: string; disk?: string } | undefined, bundleText: string, runBase: string): KeepPlace[] {
  const ram = dirPlace(join(runBase, 'retained'), false);
  return fetched ? [mediumPlace(fetched, bundleText, runBase), ram] : [ram];
}

// mediumPlace: the bundle's medium (a partition), mounted read-write only while
// the set is written, found or removed; SUB beside the bundle (reimage-outbox
// for the reports kept there: stages/outcome.ts).
export function mediumPlace(fetched: { source: string }, bundleText: string, runBase: string, sub = 'reimage-retained'): KeepPlace {
  const loc = parseLocation(bundleText);
  // The name is for messages; where it really is on the medium is settled when it is opened.
  const shown = join(/\/manifest\.json$/.test(loc.path) ? dirname(loc.path) : loc.path, sub);
  return {
    name: `${fetched.source}:${shown}`,
    survivesReboot: true,
    device: fetched.source,
    open: async () => {
      const fs = (await blkidProbe(fetched.source)).TYPE;
      if (!fs) throw new Error(`${fetched.source} has no file system`);
      const mnt = join(runBase, 'keep-dst');
      await mkdir(mnt, { recursive: true });
      await mount(fetched.source, mnt, fs, 'rw,nosuid,nodev,noexec');
      const close = async () => {
        await syncAll();
        await umount(mnt);
        await rmdir(mnt).catch(() => {});
      };
      try {
        // Resolved inside the medium (links stop at its root), and the set's own
        // directory must not be a link: a "lasting" set never lands in RAM or elsewhere.
        const where = Buffer.from(await resolveInRoot(mnt, fromUtf8(loc.path)), 'latin1').toString('utf8');
        const isDir = await stat(where).then(
          (s) => s.isDirectory(),
          () => false,
        );
        const dir = join(isDir ? where : dirname(where), sub);
        const st = await lstat(dir).catch(() => undefined);
        if (st && !st.isDirectory()) throw new Error(`${dir.slice(mnt.length)} on ${fetched.source} is not a directory (a link?): remove it`);
        return { dir, close };
      } catch (e) {
        await close();
        throw e;
      }
    },
  };
}
