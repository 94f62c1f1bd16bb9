// Path resolution inside a root, as a chroot would do it: absolute symlinks
// restart at the root, `..` stops at the root, and nothing ever resolves to a
// path outside it. Used on the old system (read) and the new one (write).
// Paths are binary strings (see util/bytes.ts).
import { lstat, readlink } from 'node:fs/promises';
import { retentionError } from '../errors.ts';
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
      if (++links > MAX_LINKS) throw retentionError(`too many symbolic links while resolving "${display('/' + parts.join('/'))}" inside the new root`);
      const target = await fs.readlink(here);
      if (target.startsWith('/')) done.length = 0;
      for (const t of target.split('/').reverse()) stack.push(t);
      continue;
    }
    done.push(c);
  }
  return ('/' + done.join('/')) as BPath;
}

export const join = (root: string, inRoot: BPath): BPath => ((root.replace(/\/+$/, '') + (inRoot === '/' ? '' : inRoot)) || '/') as BPath;
