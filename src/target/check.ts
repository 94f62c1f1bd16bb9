// Preflight refusals for a target disk: it must be an existing whole-disk
// block device, writable, not mounted, not swap, not held by a stacked device,
// not open in another process or backing a loop device, openable exclusively,
// with the image's logical sector size, and at least as large as the raw image.
import { targetError } from '../errors.ts';
import { hostSys, type Sys } from '../system/sys.ts';
import { human } from '../util/bytes.ts';
import { holders, inspect, loopBackers, mountsOf, openers, type Disk } from './sysfs.ts';

// checkTarget: the disk at PATH, or the first refusal that applies to it.
export async function checkTarget(path: string, rawSize: number, sectorSize?: number, sys: Sys = hostSys): Promise<Disk> {
  const d = await inspect(path, sys);
  if (!d) throw targetError(`target ${path} is not a block device: give a whole disk such as /dev/sda or /dev/disk/by-id/…`);
  if (d.isPartition) throw targetError(`target ${path} is the partition ${d.name}, not a whole disk: give the disk it belongs to`);
  if (d.readOnly) throw targetError(`target ${path} (${d.name}) is read-only: make it writable (blockdev --setrw) or choose another disk`);
  // The image's partition table counts in its own sectors: on a disk with other logical sectors the kernel reads another table.
  if (sectorSize !== undefined && d.sectorSize !== sectorSize) {
    throw targetError(
      `target ${path} (${d.name}) has ${d.sectorSize}-byte logical sectors but the image's partition table is made for ${sectorSize}-byte sectors: use a bundle built for ${d.sectorSize}-byte sectors, or a disk with ${sectorSize}-byte sectors`,
      { sectorSize: d.sectorSize, imageSectorSize: sectorSize },
    );
  }
  if (d.size < rawSize) {
    throw targetError(`target ${path} is ${d.size} bytes (${human(d.size)}), ${rawSize - d.size} bytes too small for the ${rawSize}-byte (${human(rawSize)}) image: choose a larger disk`, {
      size: d.size,
      needed: rawSize,
    });
  }
  await refuseBusy(d, sys);
  return d;
}

// A probe that opens a disk for a moment (udev's blkid) must not make it look busy: openers get this long to let go.
const OPEN_GRACE = { tries: 10, ms: 200 };

// refuseBusy: the disk and its partitions are not mounted, swap, held by a
// stacked device, open in another process or claimed exclusively. Run in
// preflight and again at the point of no return.
export async function refuseBusy(d: Disk, sys: Sys = hostSys, grace = OPEN_GRACE): Promise<void> {
  const stacked = [...(await mountsOf(d, sys)), ...(await holders(d, sys)), ...(await loopBackers(d, sys))];
  let open = await openers(d, sys);
  for (let i = 0; open.length && !stacked.length && i < grace.tries; i++) {
    await sys.sleep(grace.ms);
    open = await openers(d, sys);
  }
  const busy = [...stacked, ...open];
  if (busy.length) throw targetError(`target ${d.path} is in use (${busy.join('; ')}): unmount or stop what uses it first`, { busy });
  await exclusiveProbe(d, sys);
}

// exclusiveProbe: an O_EXCL open fails with EBUSY when anything else has claimed the disk.
async function exclusiveProbe(d: Disk, sys: Sys): Promise<void> {
  await sys.openExclusive(d.node).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'EBUSY') throw targetError(`target ${d.path} is busy (the kernel refused an exclusive open): something holds it; stop it and try again`);
    throw targetError(`target ${d.path} cannot be opened (${e.code}): run as root`);
  });
}

// describeDisk: one line for the confirmation prompt and the log.
export function describeDisk(d: Disk): string {
  const who = [d.model || (d.backingFile ? `loop of ${d.backingFile}` : 'unknown model'), d.serial ? `serial ${d.serial}` : 'no serial'].join(', ');
  return `${d.node} (${who}, ${human(d.size)})`;
}
