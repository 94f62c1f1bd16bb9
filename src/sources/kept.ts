// The "last written" index: after a successful run of a chunked bundle the
// flow keeps the bundle's chunk index in the new system at KEPT_INDEX
// (finish.ts). The next seeded assembly reads it back from the target disk
// without mounting anything (debugfs, from each ext2/3/4 partition the disk's
// table names) and uses it as an index seed over the whole disk: the disk is
// not chunked, only the chunks the new image wants are read — and each one is
// still hashed against its id, so what changed since (logs, packages) is
// fetched instead, never used.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KEPT_INDEX } from '../bundle/chunked.ts';
import { indexSeed, type Seed } from '../chunks/plan.ts';
import { debugfsDump, sfdiskJson } from '../system/tools.ts';
import type { Log } from '../util/log.ts';

// keptIndexSeed: the index kept on DISK by the last run, as a seed over DISK; undefined when there is none (a warning when one is unreadable).
export async function keptIndexSeed(disk: string, tmpBase: string, log: Log): Promise<Seed | undefined> {
  const table = await sfdiskJson(disk).catch(() => undefined);
  if (!table) return undefined;
  const sector = table.sectorsize ?? 512;
  const tmp = await mkdtemp(join(tmpBase, 'kept-'));
  try {
    for (const p of table.partitions ?? []) {
      const dest = join(tmp, 'last.caibx');
      if (!(await debugfsDump(disk, p.start * sector, KEPT_INDEX, dest).catch(() => false))) continue;
      const bytes = await readFile(dest).catch(() => undefined);
      if (!bytes?.length) continue;
      const seed = indexSeed(bytes, disk);
      if (typeof seed === 'string') {
        log.warn(`the kept index ${KEPT_INDEX} on ${p.node} ${seed}: the whole disk is chunked instead`);
        continue;
      }
      log.info(`seed: the index kept by the last run (${KEPT_INDEX} on ${p.node}) over ${disk}`);
      return seed;
    }
    return undefined;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

// targetSeeds: the seeds a run takes from its target DISK: the kept index when there is one, else the whole disk chunked on the fly.
export async function targetSeeds(disk: string, tmpBase: string, log: Log): Promise<Seed[]> {
  const kept = await keptIndexSeed(disk, tmpBase, log);
  return [kept ?? { kind: 'file', path: disk }];
}
