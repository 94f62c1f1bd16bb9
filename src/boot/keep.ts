// Keep places in the initramfs: the bundle's medium (a USB stick, a rescue
// partition) when it is not the target disk, mounted read-write only for the
// moment the retained set is written, found or removed; and the run directory
// in RAM, which does not survive a reboot but serves a rerun in the same boot.
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { dirPlace, type KeepPlace } from '../retention/archive.ts';
import { partitionPlace } from '../retention/partplace.ts';
import { parseLocation } from './locate.ts';
import { resolveInRoot } from '../retention/inroot.ts';
import { fromUtf8 } from '../util/bytes.ts';

// bootPlaces: where the initramfs flow keeps the retained set.
// A bundle that came from no block device (a URL) leaves RAM here; the flow
// adds a kept partition of the target when there is one (stages/keep.ts keptHome).
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
  return partitionPlace(fetched.source, `${fetched.source}:${shown}`, runBase, sub, async (mnt) => {
    // Resolved inside the medium (links stop at its root).
    const where = Buffer.from(await resolveInRoot(mnt, fromUtf8(loc.path)), 'latin1').toString('utf8');
    const isDir = await stat(where).then(
      (s) => s.isDirectory(),
      () => false,
    );
    return isDir ? where : dirname(where);
  });
}
