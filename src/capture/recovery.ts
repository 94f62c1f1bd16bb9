// The recovery partition of a captured disk: a GPT partition of the fixed type
// RECOVERY_TYPE (reimage's own type GUID, documented in the README) named
// PARTLABEL reimage-recovery. The OEM creates it in the reference layout
// (e.g. `sgdisk -n 0:0:0 -t 0:8ec7b804-… -c 0:reimage-recovery`); capture never
// changes the partition table, since the table is part of the recorded layout.
// It holds an ext4 file system (made by capture when it has none) with the
// factory bundle in /factory and the reimage kernel and initrd in /reimage.
// It is always a kept partition: the factory image leaves it out, a reset never writes it.
import { stat, statfs, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { targetError, usageError } from '../errors.ts';
import { human } from '../util/bytes.ts';
import type { SfdiskTable } from '../system/tools.ts';

export const RECOVERY_TYPE = '8ec7b804-ecd7-438d-a301-c3117601ae5d';
export const RECOVERY_LABEL = 'reimage-recovery';
export const BUNDLE_DIR = 'factory';
export const BOOT_DIR = 'reimage';

type SfPart = SfdiskTable['partitions'][number];

// findRecovery: the one partition named reimage-recovery, of the recovery type, on a GPT disk.
export function findRecovery(node: string, t: SfdiskTable): SfPart {
  if (t.label !== 'gpt') throw usageError(`disk ${node} has a ${t.label} partition table: a recovery partition needs GPT (PARTLABEL and type GUID); use --out DIR instead of --recovery`);
  const named = t.partitions.filter((p) => p.name === RECOVERY_LABEL);
  const hint = `create it in free space (e.g. sgdisk -n 0:0:0 -t 0:${RECOVERY_TYPE} -c 0:${RECOVERY_LABEL} ${node}) before capturing`;
  if (named.length === 0) throw usageError(`disk ${node} has no partition named ${RECOVERY_LABEL}: ${hint}`);
  if (named.length > 1) throw usageError(`disk ${node} has ${named.length} partitions named ${RECOVERY_LABEL} (${named.map((p) => p.node).join(', ')}): rename all but one`);
  const p = named[0]!;
  if (p.type.toLowerCase() !== RECOVERY_TYPE) {
    throw usageError(`partition ${p.node} (${RECOVERY_LABEL}) has type ${p.type.toLowerCase()}, not the recovery type ${RECOVERY_TYPE}: set it (sgdisk -t N:${RECOVERY_TYPE} ${node})`);
  }
  if (!p.uuid) throw usageError(`partition ${p.node} (${RECOVERY_LABEL}) has no PARTUUID, which the boot entry and the reset name it by: give it one (sgdisk -u N:R ${node})`);
  return p;
}

// bytesUnder: what a directory holds (files, recursively), 0 when it does not exist.
export async function bytesUnder(dir: string): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  let n = 0;
  for (const e of entries) n += e.isDirectory() ? await bytesUnder(join(dir, e.name)) : ((await stat(join(dir, e.name)).catch(() => undefined))?.size ?? 0);
  return n;
}

// Slack for directories, inodes and the block rounding of each file.
const SLACK = 4 << 20;

// checkRoom: the recovery file system mounted at MNT can take NEED bytes, counting what the old factory files there free.
export async function checkRoom(mnt: string, partNode: string, need: number): Promise<void> {
  const fs = await statfs(mnt);
  const free = fs.bavail * fs.bsize;
  const reclaim = (await bytesUnder(join(mnt, BUNDLE_DIR))) + (await bytesUnder(join(mnt, BOOT_DIR)));
  if (free + reclaim < need + SLACK) {
    throw targetError(
      `recovery partition ${partNode} has ${free + reclaim} bytes (${human(free + reclaim)}) free for the factory image, which needs ${need + SLACK} bytes (${human(need + SLACK)}): nothing was written; make the recovery partition larger, or capture with --out DIR`,
      { free: free + reclaim, needed: need + SLACK },
    );
  }
}
