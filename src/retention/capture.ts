// Capturing scanned entries into RAM: file contents copied into the staging
// tmpfs, and full metadata kept in memory: mode (with setuid/setgid/sticky),
// numeric owner and the owner's *names* from the old root's passwd/group,
// mtime, every extended attribute, and symlink targets (never followed).
// Every failed read refuses the run naming the entry (see refuse.ts); a full
// RAM stage is a memory refusal. A hard link to a file already captured is
// not copied again: it shares the first one's staged bytes and is restored
// as a link to it. Sparse files are staged sparse (sparse.ts).
import { constants, type BigIntStats } from 'node:fs';
import { lstat, open, readlink, type FileHandle } from 'node:fs/promises';
import { join as pjoin } from 'node:path';
import { ReimageError, retentionError } from '../errors.ts';
import { display, fromBuffer, isUtf8, toBuffer, type BPath } from '../util/bytes.ts';
import type { IdMap } from './ids.ts';
import { readFailed } from './refuse.ts';
import type { Found, Kind } from './scan.ts';
import { copyBytes, CopyError } from './sparse.ts';
import { fdPath, readXattrs, readXattrsMany, type Xattr } from './xattr.ts';

export type Captured = {
  path: BPath;
  kind: Kind;
  line: number;
  mode: number;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  mtimeNs: bigint;
  size: number;
  target?: BPath;
  xattrs: Xattr[];
  staged?: string;
  // Another captured path with the same inode on the old system: restored as a hard link to it.
  linkTo?: BPath;
  sparse?: boolean;
  notes: string[];
};

export type CaptureDeps = { readXattrs: typeof readXattrs; readXattrsMany: typeof readXattrsMany };

// O_NONBLOCK: opening can never hang, even if a FIFO replaced a file since the scan.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
// Entries held open at once, their extended attributes read by one getfattr.
const BATCH = 256;

type Held = { f: Found; c: Captured; fh: FileHandle };

// capture: every found entry's metadata, and the bytes of its files staged in STAGEDIR.
export async function capture(found: Found[], stageDir: string, users: IdMap, groups: IdMap, deps: CaptureDeps = { readXattrs, readXattrsMany }): Promise<Captured[]> {
  const out: Captured[] = [];
  const byPath = new Map<BPath, Captured>();
  for (let at = 0; at < found.length; at += BATCH) {
    const held: Held[] = [];
    try {
      for (const [k, f] of found.slice(at, at + BATCH).entries()) {
        const c = await captureOne(f, at + k, stageDir, users, groups, byPath, held, deps);
        if (c.linkTo === undefined) byPath.set(f.path, c);
        out.push(c);
      }
      await readHeldXattrs(held, deps);
    } finally {
      for (const h of held) await h.fh.close();
    }
  }
  // A hard link has its first name's attributes (the same inode), read by now.
  for (const c of out) if (c.linkTo !== undefined) c.xattrs = byPath.get(c.linkTo)?.xattrs ?? [];
  return out;
}

async function captureOne(f: Found, i: number, stageDir: string, users: IdMap, groups: IdMap, byPath: Map<BPath, Captured>, held: Held[], deps: CaptureDeps): Promise<Captured> {
  const uid = Number(f.st.uid);
  const gid = Number(f.st.gid);
  const user = users.byId.get(uid);
  const group = groups.byId.get(gid);
  const c: Captured = {
    path: f.path,
    kind: f.kind,
    line: f.line,
    mode: Number(f.st.mode) & 0o7777,
    uid,
    gid,
    ...(user !== undefined ? { user } : {}),
    ...(group !== undefined ? { group } : {}),
    mtimeNs: f.st.mtimeNs,
    size: f.kind === 'file' ? Number(f.st.size) : 0,
    xattrs: [],
    notes: [],
    ...(f.sparse ? { sparse: true } : {}),
  };
  const first = f.linkOf !== undefined ? byPath.get(f.linkOf) : undefined;
  if (first) {
    // Same inode as FIRST: its bytes, owner, mode and xattrs are the same; only check it still is.
    await checkSame(f, () => lstat(toBuffer(f.host), { bigint: true }));
    return { ...c, ...(first.staged ? { staged: first.staged } : {}), linkTo: first.path };
  }
  if (f.kind === 'symlink') {
    c.target = fromBuffer((await read('readlink', f, () => readlink(toBuffer(f.host), { encoding: 'buffer' }))) as Buffer);
    if (isUtf8(f.host)) c.xattrs = await read('getfattr', f, () => deps.readXattrs(f.host, true));
    else c.notes.push('extended attributes of a symlink with a non-UTF-8 name are not captured');
    return c;
  }
  const flags = OPEN_FLAGS | (f.kind === 'dir' ? constants.O_DIRECTORY : 0);
  const fh = await read('open', f, () => open(toBuffer(f.host), flags));
  // Held open until the batch's attributes are read (and closed by the caller, whatever happens).
  held.push({ f, c, fh });
  await checkSame(f, () => fh.stat({ bigint: true }));
  if (f.kind === 'file') {
    c.staged = pjoin(stageDir, `entry-${i}`);
    await stageFile(f, fh, c.staged);
  }
  return c;
}

// readHeldXattrs: the attributes of every held entry in one getfattr; if that
// reports an error, one by one, so the refusal names the entry that failed.
async function readHeldXattrs(held: Held[], deps: CaptureDeps): Promise<void> {
  if (!held.length) return;
  const all = await deps.readXattrsMany(held.map((h) => fdPath(h.fh.fd))).catch(() => undefined);
  for (const h of held) {
    h.c.xattrs = all ? (all.get(fdPath(h.fh.fd)) ?? []) : await read('getfattr', h.f, () => deps.readXattrs(fdPath(h.fh.fd), false));
  }
}

// read: one read of the old system; any failure is a refusal naming the entry.
async function read<T>(op: string, f: Found, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw readFailed(op, f.path, f.line, e);
  }
}

// checkSame: the entry is still the file the scan found (type, device, inode).
async function checkSame(f: Found, stat: () => Promise<BigIntStats>): Promise<void> {
  const st = await read('stat', f, stat);
  const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
  if (kind !== f.kind || st.dev !== f.st.dev || st.ino !== f.st.ino) {
    throw retentionError(`retained path ${display(f.path)} (list line ${f.line}) was replaced while it was being captured: stop what changes it and run again`);
  }
}

// stageFile: the bytes of an open old file into a new file in the RAM stage.
async function stageFile(f: Found, from: FileHandle, to: string): Promise<void> {
  let out: FileHandle | undefined;
  try {
    out = await open(to, 'wx', 0o600).catch((e: NodeJS.ErrnoException) => {
      throw new CopyError('write', e);
    });
    await copyBytes(from, out, f.sparse, Number(f.st.size));
  } catch (e) {
    if (!(e instanceof CopyError)) throw e;
    if (e.side === 'read') throw readFailed('read', f.path, f.line, e.cause);
    throw stageFull(f, e.cause);
  } finally {
    await out?.close();
  }
}

// A write into the RAM stage failed: it was sized too small (a file system
// that reports fewer blocks than a file holds, e.g. compressed) or RAM ran out.
function stageFull(f: Found, e: NodeJS.ErrnoException): ReimageError {
  return new ReimageError(
    'memory',
    `the RAM stage could not take retained file ${display(f.path)} (list line ${f.line}): ${e.code ?? e.message}; its old file system may report fewer blocks than the file holds (compression): retain less, or add RAM`,
    { path: display(f.path), line: f.line, errno: e.code },
  );
}
