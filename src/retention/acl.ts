// POSIX ACLs travel as the xattrs system.posix_acl_access/_default, whose
// named entries carry *numeric* uids/gids. Like file owners, those are mapped
// by name to the new image's ids. Layout (linux/posix_acl_xattr.h): a 4-byte
// version (2), then 8-byte entries {u16 tag, u16 perm, u32 id}, little endian.
import type { IdMap } from './ids.ts';

export const ACL_NAMES = new Set(['system.posix_acl_access', 'system.posix_acl_default']);
const ACL_USER = 0x02;
const ACL_GROUP = 0x08;

export type IdMaps = { oldUsers: IdMap; oldGroups: IdMap; newUsers: IdMap; newGroups: IdMap };

// remapAcl: the ACL value (base64) with named user/group ids mapped by name;
// `unmapped` lists the ids kept as they were because a name was missing.
export function remapAcl(b64: string, m: IdMaps): { value: string; unmapped: string[] } {
  const buf = Buffer.from(b64, 'base64');
  const unmapped: string[] = [];
  if (buf.length < 4 || (buf.length - 4) % 8 !== 0 || buf.readUInt32LE(0) !== 2) return { value: b64, unmapped };
  for (let off = 4; off < buf.length; off += 8) {
    const tag = buf.readUInt16LE(off);
    if (tag !== ACL_USER && tag !== ACL_GROUP) continue;
    const id = buf.readUInt32LE(off + 4);
    const [from, to, what] = tag === ACL_USER ? [m.oldUsers, m.newUsers, 'user'] : [m.oldGroups, m.newGroups, 'group'];
    const name = from.byId.get(id);
    const next = name !== undefined ? to.byName.get(name) : undefined;
    if (next === undefined) unmapped.push(`${what} ${name ?? id} (id ${id})`);
    else buf.writeUInt32LE(next, off + 4);
  }
  return { value: buf.toString('base64'), unmapped };
}
