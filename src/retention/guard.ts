// The retention guard: a reimage that keeps nothing of the old system (no
// machine-id, no keys, no site config) is almost always a mistake — a list
// forgotten on the command line, a bundle packed without --retain, a list
// whose every line is a comment. So a run with no list, or a list with no
// entries, is refused (exit 2, before anything is read) unless the operator
// says so: `--no-retain`, or `"noRetain": true` in the initrd's policy.
import { usageError } from '../errors.ts';
import type { ListEntry } from './list.ts';
import type { Log } from '../util/log.ts';

export type InUse = { name: string; entries: ListEntry[] };

// retentionInUse: the list the run keeps (LIST, or none under NORETAIN); refuses an empty one unless NORETAIN.
export function retentionInUse(list: InUse | undefined, noRetain: boolean, warn: Log['warn']): InUse {
  if (noRetain) {
    if (list?.entries.length) warn(`--no-retain: the ${list.entries.length} lines of ${list.name} are ignored; nothing of the old system will be kept`);
    else warn('--no-retain: nothing of the old system will be kept');
    return { name: '(none: --no-retain)', entries: [] };
  }
  if (!list) {
    throw usageError(
      'no retention list (neither --retain nor one in the bundle), so nothing of the old system (machine-id, keys, config) would be kept: give --retain LIST, or --no-retain to keep nothing',
    );
  }
  if (list.entries.length === 0) {
    throw usageError(`retention list ${list.name} names no entries, so nothing of the old system would be kept: add the paths to keep, or give --no-retain to keep nothing`, {
      list: list.name,
    });
  }
  return list;
}
