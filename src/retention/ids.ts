// Owner and group names from a root's /etc/passwd and /etc/group. Names are
// what survive between OS versions; numeric ids often do not.
import { bpath, type BPath } from '../util/bytes.ts';
import { readInRoot } from './inroot.ts';
import { readFailed } from './refuse.ts';
import { retentionError } from '../errors.ts';

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
// missing). Read inside the root: a /etc/passwd that is a symlink (to the
// host's, say) is not followed but reported through `warn`, and owners are
// then kept by number and flagged per entry. STRICT (the old system): a file
// that is there but cannot be read refuses the run, since owners would
// silently lose their names.
export async function readIds(root: string, warn: (s: string) => void = () => {}, strict = false): Promise<{ users: IdMap; groups: IdMap }> {
  const load = async (f: string) => {
    const path = bpath(`/etc/${f}`);
    const r = await readInRoot(root, path).catch((e: unknown) => {
      if (strict) throw readFailed('read', path as BPath, undefined, e);
      return { why: `${path} cannot be read (${(e as Error).message})` } as Awaited<ReturnType<typeof readInRoot>>;
    });
    if (strict && r.error) throw readFailed('open', path as BPath, undefined, r.error);
    // A link is not followed (it may point out of the root); anything else odd on the old system refuses.
    if (strict && r.why && !r.link) throw retentionError(`the old system's ${r.why}: owners would lose their names; repair ${path} on the old system, or reimage without retaining (an empty list)`);
    if (r.why) warn(`${r.why}: owners are kept by number`);
    return r.bytes?.toString('utf8') ?? '';
  };
  return { users: parseIdFile(await load('passwd')), groups: parseIdFile(await load('group')) };
}
