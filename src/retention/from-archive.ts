// `reimage restore`: a saved retained set (retention/archive.ts) put back into
// a mounted root by hand, for a technician whose run failed after its point
// of no return and who finished the new system another way. Owners are mapped
// by name against that root's passwd/group, exactly as the flow does.
import { rm, stat } from 'node:fs/promises';
import { ReimageError, usageError } from '../errors.ts';
import type { Log } from '../util/log.ts';
import { readArchive } from './archive.ts';
import { readIds } from './ids.ts';
import { restore, type EntryReport } from './restore.ts';

// restoreFromArchive: every entry of the archive in DIR restored under ROOT; throws (exit 11) unless all came back.
export async function restoreFromArchive(dir: string, root: string, log: Log): Promise<{ from: string; created: string; entries: EntryReport[] }> {
  const a = await readArchive(dir).catch((e: NodeJS.ErrnoException) => {
    throw usageError(`${dir} is not a saved retained set (${e.code === 'ENOENT' ? 'no retained.json in it' : e.message}): give the directory that holds retained.json`);
  });
  if (
    !(await stat(root).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  )
    throw usageError(`--root ${root} is not a directory: mount the new system's root there (and its other file systems below it)`);
  log.info(`restoring ${a.entries.length} entries saved ${a.created} (disk serial ${a.disk.serial || '-'}, list ${a.list}) into ${root}`);
  const { users, groups } = await readIds(root);
  const entries = await restore(a.entries, root, { oldUsers: a.users, oldGroups: a.groups, newUsers: users, newGroups: groups });
  const bad = entries.filter((e) => e.outcome !== 'restored');
  log.info(`restored ${entries.length - bad.length} of ${entries.length} entries`);
  const result = { from: dir, created: a.created, entries };
  if (bad.length) {
    const err = new ReimageError(
      'afterWrite',
      `${bad.length} of ${entries.length} saved entries did not fully come back (first: ${bad[0]!.path}: ${bad[0]!.notes.at(-1) ?? bad[0]!.outcome}): see the report; the saved set in ${dir} is kept`,
    );
    err.report = result;
    throw err;
  }
  // Every entry is back: the set has done its job. Left in place it would be
  // found (and restored over newer files) by a later run on this disk.
  await rm(dir, { recursive: true, force: true });
  log.info(`the saved set ${dir} was removed: its entries are in ${root} now`);
  return result;
}
