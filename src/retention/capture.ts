// Capturing scanned entries into RAM: file contents copied into the staging
// tmpfs, and full metadata kept in memory: mode (with setuid/setgid/sticky),
// numeric owner and the owner's *names* from the old root's passwd/group,
// mtime, every extended attribute, and symlink targets (never followed).
import { constants } from 'node:fs';
import { open, readlink, type FileHandle } from 'node:fs/promises';
import { join as pjoin } from 'node:path';
import { retentionError } from '../errors.ts';
import { display, fromBuffer, isUtf8, toBuffer, type BPath } from '../util/bytes.ts';
import type { IdMap } from './ids.ts';
import type { Found, Kind } from './scan.ts';
import { fdPath, readXattrs, type Xattr } from './xattr.ts';

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
  notes: string[];
};

// O_NONBLOCK: opening can never hang, even if a FIFO replaced a file since the scan.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export async function capture(found: Found[], stageDir: string, users: IdMap, groups: IdMap): Promise<Captured[]> {
  const out: Captured[] = [];
  for (const [i, f] of found.entries()) {
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
    };
    if (f.kind === 'symlink') {
      c.target = fromBuffer((await readlink(toBuffer(f.host), { encoding: 'buffer' })) as Buffer);
      if (isUtf8(f.host)) c.xattrs = await readXattrs(f.host, true);
      else c.notes.push('extended attributes of a symlink with a non-UTF-8 name are not captured');
    } else {
      const flags = OPEN_FLAGS | (f.kind === 'dir' ? constants.O_DIRECTORY : 0);
      const fh = await open(toBuffer(f.host), flags).catch((e: NodeJS.ErrnoException) => {
        throw retentionError(`retained path ${display(f.path)} cannot be read (${e.code}): check the old system`);
      });
      try {
        const st = await fh.stat({ bigint: true });
        if ((f.kind === 'file' && !st.isFile()) || (f.kind === 'dir' && !st.isDirectory())) {
          throw retentionError(`retained path ${display(f.path)} changed type while it was being captured: run again`);
        }
        c.xattrs = await readXattrs(fdPath(fh.fd), false);
        if (f.kind === 'file') {
          c.staged = pjoin(stageDir, `entry-${i}`);
          await copyOut(fh, c.staged);
        }
      } finally {
        await fh.close();
      }
    }
    out.push(c);
  }
  return out;
}

// copyOut: a file's bytes (from an fd we hold, never reopened by name) into the stage.
async function copyOut(from: FileHandle, to: string): Promise<void> {
  const out = await open(to, 'wx', 0o600);
  const buf = Buffer.allocUnsafe(1 << 20);
  try {
    for (let pos = 0; ; ) {
      const { bytesRead } = await from.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      await out.write(buf, 0, bytesRead);
      pos += bytesRead;
    }
  } finally {
    await out.close();
  }
}
