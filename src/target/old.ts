// The old system's partitions on the target, brought in line with the kernel
// before anything is written (read-only work). An old table that is stale —
// a partition that ends past the disk's end, after an image of a larger disk
// was copied onto it — is named for what it is: irrelevant when nothing is
// read from the old system (the table is overwritten), a refusal otherwise.
import { ReimageError, targetError } from '../errors.ts';
import { hostSys, type Sys } from '../system/sys.ts';
import { partNumber, sfdiskJson } from '../system/tools.ts';
import type { Log } from '../util/log.ts';
import { isExtended } from '../image/table.ts';
import { identify, settle, type PartIdentity } from './partitions.ts';
import type { Disk } from './sysfs.ts';

// MBR partition types of an extended partition (CHS, LBA, Linux).

// oldPartitions: the old partitions, identified; NEEDED names what must be read from them (undefined: nothing).
export async function oldPartitions(disk: Disk, needed: string | undefined, log: Log, sys: Sys = hostSys): Promise<PartIdentity[]> {
  const old = await sfdiskJson(disk.node, sys);
  if (!old || !old.partitions.length) return [];
  const ignore = (why: string) => {
    log.warn(`the old partition table of ${disk.node} ${why}; nothing is read from the old system (no retained entries, no installed version to compare), and the table is replaced by the image's`);
    return [];
  };
  const ss = old.sectorsize ?? disk.sectorSize;
  const sectors = Math.floor(disk.size / ss);
  const past = old.partitions.find((p) => p.start + p.size > sectors);
  // A GPT made for a larger disk is not valid on this one: sfdisk and the kernel see only its protective MBR.
  const gptLost = old.label === 'dos' && old.partitions.some((p) => p.type.toLowerCase() === 'ee');
  const stale = past
    ? `says partition ${partNumber(past.node)} ends at sector ${past.start + past.size}, past the disk's end (${sectors} sectors of ${ss} bytes): the table is stale (copied from a larger disk?)`
    : gptLost
      ? 'is a GPT that is not valid on this disk (only its protective MBR is readable: the GPT was made for a larger disk, or is corrupt)'
      : undefined;
  if (stale) {
    if (needed === undefined) return ignore(stale);
    throw targetError(
      `the old partition table of ${disk.node} ${stale}, so ${needed} cannot be read from the old system: repair the old table${needed.includes('retained') ? ', or reimage without retaining anything (an empty retention list)' : ''}`,
    );
  }
  const expected = old.partitions.map((p) => ({ number: partNumber(p.node), start: p.start, size: p.size, ...(old.label === 'dos' && isExtended(p.type) ? { container: true } : {}) }));
  try {
    return await identify(await settle(disk, expected, log, { exit: 'target', attempts: 5, delayMs: 200 }, sys), sys);
  } catch (e) {
    if (needed !== undefined || !(e instanceof ReimageError)) throw e;
    return ignore(`cannot be brought in line with the kernel (${e.message})`);
  }
}
