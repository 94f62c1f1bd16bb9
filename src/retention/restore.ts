// Restoring captured entries into the new root. Paths resolve inside the new
// root (its symlinks followed as a chroot would, never out of it); missing
// parents are created; files and symlinks are written under a temporary ASCII
// name, given owner, xattrs, mode and mtime, then renamed over the target
// (atomic replace); directories get their mtime last, after their children.
// Owners are mapped by *name* against the new image's passwd/group. Hard
// links captured together are linked again (a copy, noted, where the new
// layout puts them on different file systems); sparse files keep their holes.
import { constants } from 'node:fs';
import { lchown, link, lstat, lutimes, mkdir, open, rename, rm, symlink } from 'node:fs/promises';
import { display, isUtf8, toBuffer, type BPath } from '../util/bytes.ts';
import type { Captured } from './capture.ts';
import { ACL_NAMES, remapAcl, type IdMaps } from './acl.ts';
import { mapOwner } from './ids.ts';
import { resolveParent } from './inroot.ts';
import { copyBytes } from './sparse.ts';
import { fdPath, writeXattr } from './xattr.ts';

export type EntryReport = {
  path: string;
  pathHex?: string;
  kind: string;
  line: number;
  outcome: 'restored' | 'partial' | 'failed';
  mode: string;
  size: number;
  old: { uid: number; gid: number; user?: string; group?: string };
  new: { uid: number; gid: number; userMapped: boolean; groupMapped: boolean };
  xattrs: string[];
  linkTo?: string;
  sparse?: boolean;
  notes: string[];
};

const seconds = (ns: bigint) => Number(ns) / 1e9;

export async function restore(entries: Captured[], root: string, ids: IdMaps): Promise<EntryReport[]> {
  const reports: EntryReport[] = [];
  const dirTimes: { host: BPath; mtimeNs: bigint }[] = [];
  const hosts = new Map<BPath, BPath>();
  for (const [i, c] of entries.entries()) {
    const m = mapOwner(c, ids.newUsers, ids.newGroups);
    const entry = withAclsMapped(c, ids);
    const r: EntryReport = {
      path: display(c.path),
      ...(isUtf8(c.path) ? {} : { pathHex: toBuffer(c.path).toString('hex') }),
      kind: c.kind,
      line: c.line,
      outcome: 'restored',
      mode: c.mode.toString(8).padStart(4, '0'),
      size: c.size,
      old: { uid: c.uid, gid: c.gid, ...(c.user !== undefined ? { user: c.user } : {}), ...(c.group !== undefined ? { group: c.group } : {}) },
      new: { uid: m.uid, gid: m.gid, userMapped: m.userMapped, groupMapped: m.groupMapped },
      xattrs: c.xattrs.map((x) => x.name),
      ...(c.linkTo !== undefined ? { linkTo: display(c.linkTo) } : {}),
      ...(c.sparse ? { sparse: true } : {}),
      notes: [...entry.notes],
    };
    if (!m.userMapped) r.notes.push(c.user ? `user ${c.user} does not exist in the new image: kept uid ${c.uid}` : `uid ${c.uid} has no name on the old system: kept as is`);
    if (!m.groupMapped) r.notes.push(c.group ? `group ${c.group} does not exist in the new image: kept gid ${c.gid}` : `gid ${c.gid} has no name on the old system: kept as is`);
    try {
      const linkTo = c.linkTo !== undefined ? hosts.get(c.linkTo) : undefined;
      const host = await restoreOne(entry, i, root, m.uid, m.gid, r.notes, linkTo);
      if (c.kind === 'dir') dirTimes.push({ host, mtimeNs: c.mtimeNs });
      if (c.kind === 'file') hosts.set(c.path, host);
      if (r.notes.some((n) => n.startsWith('could not'))) r.outcome = 'partial';
    } catch (e) {
      r.outcome = 'failed';
      r.notes.push(`could not restore: ${(e as Error).message}`);
    }
    reports.push(r);
  }
  // Children change a directory's mtime, so directories get theirs last, deepest first.
  for (const d of dirTimes.reverse()) await lutimes(toBuffer(d.host), seconds(d.mtimeNs), seconds(d.mtimeNs)).catch(() => {});
  return reports;
}

async function restoreOne(c: Captured, i: number, root: string, uid: number, gid: number, notes: string[], linkTo?: BPath): Promise<BPath> {
  const { hostDir, name } = await resolveParent(root, c.path);
  await mkdir(toBuffer(hostDir), { recursive: true, mode: 0o755 });
  const dest = `${hostDir}/${name}` as BPath;
  const existing = await lstat(toBuffer(dest)).catch(() => undefined);
  const dirFh = await open(toBuffer(hostDir), constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    if (c.kind === 'dir') {
      if (existing && !existing.isDirectory()) await rm(toBuffer(dest), { force: true });
      if (!existing?.isDirectory()) await mkdir(toBuffer(dest), { mode: 0o700 });
      const fh = await open(toBuffer(dest), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      try {
        await fh.chown(uid, gid);
        await setXattrs(c, fdPath(fh.fd), false, notes);
        await fh.chmod(c.mode);
      } finally {
        await fh.close();
      }
      return dest;
    }
    const tmpName = `.reimage-${process.pid}-${i}.tmp`;
    const tmp = `${hostDir}/${tmpName}` as BPath;
    await rm(toBuffer(tmp), { force: true, recursive: true });
    // A hard link shares the inode (owner, mode, xattrs, times) restored for the first name.
    const asLink = c.linkTo !== undefined && (await linked(c, linkTo, tmp, notes));
    if (asLink) {
      // nothing more to set
    } else if (c.kind === 'symlink') {
      await symlink(toBuffer(c.target!), toBuffer(tmp));
      await lchown(toBuffer(tmp), uid, gid);
      await setXattrs(c, fdPath(dirFh.fd, tmpName), true, notes);
    } else {
      const fh = await open(toBuffer(tmp), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        const from = await open(c.staged!, 'r');
        try {
          await copyBytes(from, fh, c.sparse === true, c.size);
        } finally {
          await from.close();
        }
        await fh.chown(uid, gid);
        await setXattrs(c, fdPath(fh.fd), false, notes);
        // chown cleared setuid/setgid; the full mode goes on after owner and xattrs.
        await fh.chmod(c.mode);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    if (!asLink) await lutimes(toBuffer(tmp), seconds(c.mtimeNs), seconds(c.mtimeNs));
    if (existing?.isDirectory()) {
      notes.push(`replaced a directory of the new image at ${display(c.path)}`);
      await rm(toBuffer(dest), { recursive: true, force: true });
    }
    await rename(toBuffer(tmp), toBuffer(dest));
    return dest;
  } finally {
    await dirFh.close();
  }
}

async function setXattrs(c: Captured, path: string, noFollow: boolean, notes: string[]): Promise<void> {
  for (const x of c.xattrs) {
    await writeXattr(path, x, noFollow).catch((e: Error) => notes.push(`could not set xattr ${x.name}: ${e.message}`));
  }
}

// withAclsMapped: the entry with its ACL xattrs' named ids mapped by name.
function withAclsMapped(c: Captured, ids: IdMaps): Captured {
  const notes = [...c.notes];
  const xattrs = c.xattrs.map((x) => {
    if (!ACL_NAMES.has(x.name)) return x;
    const r = remapAcl(x.value, ids);
    for (const u of r.unmapped) notes.push(`${x.name}: ${u} has no match in the new image: kept its numeric id`);
    return { name: x.name, value: r.value };
  });
  return { ...c, xattrs, notes };
}

// linked: TMP made a hard link to the restored first name (LINKTO); false, with
// a note, when that cannot be done and the entry is to be restored as a copy.
async function linked(c: Captured, linkTo: BPath | undefined, tmp: BPath, notes: string[]): Promise<boolean> {
  const why =
    linkTo === undefined
      ? `${display(c.linkTo!)} was not restored`
      : await link(toBuffer(linkTo), toBuffer(tmp)).then(
          () => '',
          (e: NodeJS.ErrnoException) => e.code ?? e.message,
        );
  if (!why) return true;
  notes.push(`could not keep the hard link to ${display(c.linkTo!)} (${why}): restored as a separate copy`);
  return false;
}
