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
  const entries = await restoreEntries(p.captured, base, { oldUsers: p.ids.users, oldGroups: p.ids.groups, newUsers: users, newGroups: groups });
  const bad = entries.filter((e) => e.outcome !== 'restored');
  log.info(`restored ${entries.length - bad.length} of ${entries.length} retained entries${bad.length ? `; ${bad.length} not fully: see the report` : ''}`);
  return { root: base, entries, unmount: umountAll };
}
