// Path resolution inside a root, as a chroot would do it: absolute symlinks
// restart at the root, `..` stops at the root, and nothing ever resolves to a
// path outside it. Used on the old system (read) and the new one (write).
// Also the confined I/O built on it: mount points walked without following
// any symlink, one file read with its final symlink never followed, one file
// written by rename over its name (a symlink planted there is replaced, not
// followed). Paths are binary strings (see util/bytes.ts).
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readlink, rename, rm } from 'node:fs/promises';
import { ReimageError, retentionError, type ExitName } from '../errors.ts';
import { display, fromBuffer, toBuffer, type BPath } from '../util/bytes.ts';

const MAX_LINKS = 40;

export type Fs = {
  lstat: (p: BPath) => Promise<{ isSymbolicLink: () => boolean; isDirectory: () => boolean } | undefined>;
  readlink: (p: BPath) => Promise<BPath>;
};

export const realFs: Fs = {
  lstat: (p) => lstat(toBuffer(p)).catch(() => undefined),
  readlink: async (p) => fromBuffer((await readlink(toBuffer(p), { encoding: 'buffer' })) as Buffer),
};

// resolveParent: the host path of an in-root path's parent directory with all
// its symlinks resolved inside the root, plus the last component (never
// followed). Missing directories are returned as-is (the caller may create them).
export async function resolveParent(root: string, inRoot: BPath, fs: Fs = realFs): Promise<{ dir: BPath; name: BPath; hostDir: BPath }> {
  const parts = inRoot.split('/').filter(Boolean);
  const name = parts.pop();
  if (!name) throw retentionError(`retained path "${display(inRoot)}" has no file name`);
  const dir = await resolveDir(root, parts, fs);
  return { dir, name: name as BPath, hostDir: join(root, dir) };
}

// resolveInRoot: the host path of an in-root path with every component,
// the last one included, resolved inside the root (as a chroot's realpath).
export async function resolveInRoot(root: string, inRoot: BPath, fs: Fs = realFs): Promise<BPath> {
  return join(root, await resolveDir(root, inRoot.split('/').filter(Boolean), fs));
}

// resolveDir: follow each component inside the root; returns an in-root path.
async function resolveDir(root: string, parts: string[], fs: Fs): Promise<BPath> {
  const stack = [...parts].reverse();
  const done: string[] = [];
  let links = 0;
  while (stack.length) {
    const c = stack.pop()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      done.pop();
      continue;
    }
    const here = join(root, ('/' + [...done, c].join('/')) as BPath);
    const st = await fs.lstat(here);
    if (st?.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw retentionError(`too many symbolic links while resolving "${display('/' + parts.join('/'))}" inside ${root}`);
      const target = await fs.readlink(here);
      if (target.startsWith('/')) done.length = 0;
      for (const t of target.split('/').reverse()) stack.push(t);
      continue;
    }
    done.push(c);
  }
  return ('/' + done.join('/')) as BPath;
}

export const join = (root: string, inRoot: BPath): BPath => (root.replace(/\/+$/, '') + (inRoot === '/' ? '' : inRoot) || '/') as BPath;

// mountPoint: the host directory for a mount path inside `root`, walked one
// component at a time with lstat and never through a symlink (mount(8) would
// follow one, and `/boot/efi -> /usr/bin` would then mount over the host's
// /usr/bin). `path` is normalised (util/mountpath.ts). With `create`, missing
// directories are made one level at a time, each inside the one just checked.
// Returns why the path cannot be a mount point instead of throwing.
export async function mountPoint(root: string, path: string, create: boolean): Promise<{ host: string } | { why: string }> {
  let host = root.replace(/\/+$/, '') || '/';
  let shown = '';
  for (const c of path.split('/').filter(Boolean)) {
    if (c === '.' || c === '..') return { why: `${path} is not a normalised path` };
    host = `${host === '/' ? '' : host}/${c}`;
    shown += `/${c}`;
    const st = await lstat(host).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      const to = await readlink(host).catch(() => '?');
      return { why: `${shown} is a symbolic link (-> ${to}), not a directory` };
    }
    if (st && !st.isDirectory()) return { why: `${shown} is not a directory` };
    if (st) continue;
    if (!create) return { why: `${shown} does not exist` };
    const made = await mkdir(host, { mode: 0o755 }).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e.code ?? 'error',
    );
    if (made) return { why: `${shown} could not be created (${made})` };
  }
  return { host };
}

// The largest file readInRoot reads (passwd, group, a report).
const READ_LIMIT = 16 << 20;

// readInRoot: a small regular file inside a root — parents resolved as a
// chroot would, the file itself opened O_NOFOLLOW and never a FIFO or device.
// `bytes` when read; `why` when present but refused (a symlink, not a regular
// file, too large), with `error` when it could not be opened; neither when missing.
export async function readInRoot(root: string, inRoot: BPath, limit = READ_LIMIT): Promise<{ bytes?: Buffer; why?: string; link?: true; error?: NodeJS.ErrnoException }> {
  const { hostDir, name } = await resolveParent(root, inRoot);
  const host = toBuffer(`${hostDir}/${name}`);
  const st = await lstat(host).catch(() => undefined);
  if (!st) return {};
  if (st.isSymbolicLink())
    return {
      link: true,
      why: `${display(inRoot)} is a symbolic link (-> ${display(fromBuffer((await readlink(host, { encoding: 'buffer' }).catch(() => Buffer.from('?'))) as Buffer))}), not followed`,
    };
  if (!st.isFile()) return { why: `${display(inRoot)} is not a regular file` };
  if (st.size > limit) return { why: `${display(inRoot)} is ${st.size} bytes, over the ${limit}-byte limit` };
  const fh = await open(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY).catch((e: NodeJS.ErrnoException) => e);
  if (fh instanceof Error) return fh.code === 'ENOENT' ? {} : { why: `${display(inRoot)} cannot be opened (${fh.code ?? fh.message})`, error: fh };
  try {
    const now = await fh.stat();
    if (!now.isFile() || now.ino !== st.ino || now.size > limit) return { why: `${display(inRoot)} changed while it was read` };
    return { bytes: await fh.readFile() };
  } finally {
    await fh.close();
  }
}

// writeInRoot: write a file inside a root: parents resolved (and made) inside
// it, the bytes written to a fresh temporary name (O_EXCL|O_NOFOLLOW) in the
// resolved directory, synced, then renamed over the final name — so whatever
// the image has there (a symlink to /etc/shadow, say) is replaced, never
// followed.
export async function writeInRoot(root: string, inRoot: BPath, data: string | Buffer, mode: number, exit: ExitName = 'afterWrite'): Promise<void> {
  const { hostDir, name } = await resolveParent(root, inRoot);
  const tmp = toBuffer(`${hostDir}/.reimage-${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(toBuffer(hostDir), { recursive: true, mode: 0o755 });
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, toBuffer(`${hostDir}/${name}`));
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    throw new ReimageError(exit, `could not write ${display(inRoot)} in ${root}: ${(e as Error).message}`);
  }
}
