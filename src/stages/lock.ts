// One reimage per disk at a time: a lock file holding the owner's pid and a nonce.
// It is made atomically: the record is written to a temp file that is then
// link(2)ed into place, which fails if a lock exists, so the lock never
// appears empty. A lock whose pid is dead is stale and is taken over by
// exactly one process, however many race: to remove a stale lock a process
// must first create its claim file (named by the stale lock's nonce, made the
// same atomic way), then check under the claim that the lock is still the one
// it read. A claim left by a process that died is stale in turn and is taken
// over the same way.
import { createHash, randomBytes } from 'node:crypto';
import { link, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ReimageError } from '../errors.ts';

// diskLocks: the locks of one target disk under RUNBASE (`lock-<kernel name>`):
// two runs on one disk exclude each other, runs on different disks do not. A
// loop device also takes the lock of what is behind it — the block device's
// own (`lock-sdb` for a loop over /dev/sdb), or one named by the backing
// file's path — so two loops over one file, or a loop and its disk, exclude
// each other too.
export function diskLocks(runBase: string, disk: { name: string; backingFile?: string }): string[] {
  const back = disk.backingFile?.trim().replace(/ \(deleted\)$/, '');
  if (!back) return [join(runBase, `lock-${disk.name}`)];
  const behind = back.startsWith('/dev/') ? basename(back) : `file-${createHash('sha256').update(back).digest('hex').slice(0, 16)}`;
  return [join(runBase, `lock-${disk.name}`), join(runBase, `lock-${behind}`)];
}

type IsAlive = (pid: number) => boolean;

// lockHolder: the live pid holding the lock at PATH, if any (a plan, which takes no lock, says so).
export async function lockHolder(path: string, isAlive: IsAlive = alive): Promise<number | undefined> {
  const pid = ownerPid((await readFile(path, 'utf8').catch(() => undefined)) ?? '');
  return pid !== undefined && isAlive(pid) ? pid : undefined;
}

const MAX_ATTEMPTS = 400;
const MAX_DEPTH = 8;

// acquireLock: the lock at PATH, or exit 4 naming the running owner; resolves to its release.
export async function acquireLock(path: string, isAlive: IsAlive = alive): Promise<() => Promise<void>> {
  const record = `${process.pid} ${randomBytes(8).toString('hex')}\n`;
  const got = await take(path, record, isAlive, 0);
  if (got !== true) {
    throw new ReimageError('target', `another reimage (pid ${got.pid}) is running on this disk (lock ${path}): wait for it to finish; nothing was written`, { pid: got.pid });
  }
  // Remove the lock only while it is still ours.
  return async () => {
    if ((await readFile(path, 'utf8').catch(() => undefined)) === record) await rm(path, { force: true });
  };
}

// take: true once PATH holds RECORD, or the live owner that holds it.
async function take(path: string, record: string, isAlive: IsAlive, depth: number): Promise<true | { pid: number }> {
  if (depth > MAX_DEPTH) throw lockError(path);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (await place(path, record)) return true;
    const seen = await readFile(path, 'utf8').catch(() => undefined);
    // Gone between link and read: its owner released it; try again.
    if (seen === undefined) continue;
    const pid = ownerPid(seen);
    if (pid !== undefined && isAlive(pid)) return { pid };
    // Stale: a dead owner, or no pid at all (a lock written by an older reimage that died while writing it).
    const claim = `${path}.takeover-${nonceOf(seen)}`;
    const claimed = await take(claim, record, isAlive, depth + 1);
    if (claimed === true) {
      try {
        // Under the claim nobody else removes this lock: remove it only if it is still the one read.
        if ((await readFile(path, 'utf8').catch(() => undefined)) === seen) await rm(path, { force: true });
      } finally {
        await rm(claim, { force: true });
      }
    } else {
      // Another process is taking the stale lock over: wait, then see who won.
      await sleep(2 + Math.random() * 8);
    }
  }
  throw lockError(path);
}

// place: write RECORD to a temp file and link it to PATH; false when PATH exists.
async function place(path: string, record: string): Promise<boolean> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, record, { mode: 0o644, flag: 'wx' });
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    await rm(tmp, { force: true });
  }
}

// ownerPid: the pid a lock names (the first word), if any.
function ownerPid(text: string): number | undefined {
  const m = /^(\d+)(?: [0-9a-f]+)?\n?$/.exec(text);
  const pid = m ? Number(m[1]) : 0;
  return pid > 0 ? pid : undefined;
}

// nonceOf: the lock's own nonce, or (an older lock without one) a digest of its text.
function nonceOf(text: string): string {
  const m = /^\d+ ([0-9a-f]+)\n?$/.exec(text);
  return m ? m[1]! : `x${Buffer.from(text).toString('hex').slice(0, 32) || 'empty'}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const lockError = (path: string) => new ReimageError('environment', `cannot take the lock ${path}: remove it and ${path}.takeover-* if no reimage is running`);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
