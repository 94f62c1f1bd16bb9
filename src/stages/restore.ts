// restore: the new system mounted by the manifest's plan (exact identities,
// restricted to the target's partitions), and every captured entry put back
// with owners mapped by name against the new image's passwd/group.
import { join } from 'node:path';
import { ReimageError } from '../errors.ts';
import { emptyIds, readIds } from '../retention/ids.ts';
import { restore as restoreEntries } from '../retention/restore.ts';
import type { PartIdentity } from '../target/partitions.ts';
import type { Ctx } from './context.ts';
import { mountPlan, newPlan } from './mounts.ts';

export async function restore(ctx: Ctx, parts: PartIdentity[]): Promise<void> {
  const { cleanup, log } = ctx;
  const base = join(ctx.runDir, 'new');
  const { missing, umountAll } = await mountPlan(parts, newPlan(ctx.bundle!.manifest), base, 'rw', cleanup, 'afterWrite');
  if (missing.length) {
    const l = missing[0]!;
    throw new ReimageError(
      'afterWrite',
      `the new system's ${l.kind}=${l.value} (for ${l.path}) is not on ${ctx.disk!.node} after writing: the image's mount plan is wrong; rebuild the bundle with --mount`,
    );
  }
  ctx.newRoot = base;
  ctx.newUmount = umountAll;
  const { users, groups } = await readIds(base, (w) => log.warn(`new system: ${w}`));
  ctx.entries = await restoreEntries(ctx.captured ?? [], base, { oldUsers: ctx.oldUsers ?? emptyIds(), oldGroups: ctx.oldGroups ?? emptyIds(), newUsers: users, newGroups: groups });
  const bad = ctx.entries.filter((e) => e.outcome !== 'restored');
  log.info(`restored ${ctx.entries.length - bad.length} of ${ctx.entries.length} retained entries${bad.length ? `; ${bad.length} not fully: see the report` : ''}`);
}
