// One reimage at a time: a lock file holding the owner's pid, created with
// O_EXCL. A lock left by a process that no longer exists is taken over.
import { open, readFile, rm } from 'node:fs/promises';
import { ReimageError } from '../errors.ts';

export async function acquireLock(path: string, isAlive: (pid: number) => boolean = alive): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return () => rm(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (pid > 0 && isAlive(pid)) {
        throw new ReimageError('target', `another reimage (pid ${pid}) is running (lock ${path}): wait for it to finish; nothing was written`, { pid });
      }
      await rm(path, { force: true });
    }
  }
  throw new ReimageError('environment', `cannot take the lock ${path}: remove it if no reimage is running`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
