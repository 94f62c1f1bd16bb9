// Owner and group names from a root's /etc/passwd and /etc/group. Names are
// what survive between OS versions; numeric ids often do not.
import { readFile } from 'node:fs/promises';
import type { BPath } from '../util/bytes.ts';
import { readFailed } from './refuse.ts';

export type IdMap = { byName: Map<string, number>; byId: Map<number, string> };

export function parseIdFile(text: string): IdMap {
  const byName = new Map<string, number>();
  const byId = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const [name, , id] = line.split(':');
    const n = Number(id);
    if (!name || id === undefined || id === '' || !Number.isInteger(n) || n < 0) continue;
    if (!byName.has(name)) byName.set(name, n);
    if (!byId.has(n)) byId.set(n, name);
  }
  return { byName, byId };
}

export const emptyIds = (): IdMap => ({ byName: new Map(), byId: new Map() });

export type Owner = { uid: number; gid: number; user?: string; group?: string };

export type Mapped = { uid: number; gid: number; userMapped: boolean; groupMapped: boolean };

// mapOwner: the new image's ids for the old owner's names; a name the new
// image lacks (or no name at all) keeps the numeric id and is flagged.
export function mapOwner(o: Owner, users: IdMap, groups: IdMap): Mapped {
  const uid = o.user !== undefined ? users.byName.get(o.user) : undefined;
  const gid = o.group !== undefined ? groups.byName.get(o.group) : undefined;
  return { uid: uid ?? o.uid, gid: gid ?? o.gid, userMapped: uid !== undefined, groupMapped: gid !== undefined };
}

// readIds: the users and groups of a mounted root (empty maps where a file is
// missing). STRICT (the old system): any other read error refuses the run, since
// owners would silently lose their names.
export async function readIds(root: string, strict = false): Promise<{ users: IdMap; groups: IdMap }> {
  const load = (f: string) =>
    readFile(`${root}/etc/${f}`, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (strict && e.code !== 'ENOENT') throw readFailed('read', `/etc/${f}` as BPath, undefined, e);
      return '';
    });
  return { users: parseIdFile(await load('passwd')), groups: parseIdFile(await load('group')) };
}
