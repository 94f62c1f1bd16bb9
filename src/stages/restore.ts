// restore: the new system mounted by the manifest's plan (exact identities,
// restricted to the target's partitions), and every captured entry put back
// with owners mapped by name against the new image's passwd/group.
import { join } from 'node:path';
import { ReimageError } from '../errors.ts';
import { readIds } from '../retention/ids.ts';
import { restore as restoreEntries } from '../retention/restore.ts';
import type { PartIdentity } from '../target/partitions.ts';
import type { Restored, Run } from './context.ts';
import type { Passed } from './phase.ts';
import { mountPlan, newPlan } from './mounts.ts';
import { cutArmed, testCut } from '../util/testcut.ts';

export async function restore(run: Run, p: Passed, parts: PartIdentity[]): Promise<Restored> {
  const { cleanup, log } = run;
  const base = join(run.runDir, 'new');
  const { missing, umountAll } = await mountPlan(parts, newPlan(p.bundle.manifest), base, 'rw', cleanup, 'afterWrite', run.sys, run.notes);
  const l = missing[0];
  if (l) {
    throw new ReimageError(
      'afterWrite',
      `the new system's ${l.kind}=${l.value} (for ${l.path}) is not on ${p.disk.node} after writing: the image's mount plan is wrong; rebuild the bundle with --mount`,
    );
  }
  const { users, groups } = await readIds(base, (w) => log.warn(`new system: ${w}`));
  const ids = { oldUsers: p.ids.users, oldGroups: p.ids.groups, newUsers: users, newGroups: groups };
  // Power-cut tests: the first entry back, then the process dies (util/testcut.ts).
  if (cutArmed('restore')) {
    await restoreEntries(p.captured.slice(0, 1), base, ids);
    testCut('restore', (l) => log.warn(l));
  }
  const entries = await restoreEntries(p.captured, base, ids);
  const bad = entries.filter((e) => e.outcome !== 'restored');
  log.info(`restored ${entries.length - bad.length} of ${entries.length} retained entries${bad.length ? `; ${bad.length} not fully: see the report` : ''}`);
  return { root: base, entries, unmount: umountAll };
}
