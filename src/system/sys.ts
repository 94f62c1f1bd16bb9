// The OS boundary handed to code that touches the machine: how processes are
// started, where /sys, /proc, /dev and /lib/modules are, the clock, sleeping,
// the identity of a block device node and an exclusive open. `hostSys` is the
// real machine; unit tests build a fake one (test/helpers/fake-sys.ts) whose
// runner throws on any command it was not scripted for.
import { constants } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import type { Log } from '../util/log.ts';
import { run, stream, type Run, type Stream, type StreamOptions } from './exec.ts';

// A block device node: its resolved path and its major:minor.
export type BlockDev = { node: string; dev: string };

export type Sys = {
  run: Run;
  stream: (tool: string, args: readonly string[], opts?: StreamOptions) => Stream;
  sysRoot: string;
  procRoot: string;
  devRoot: string;
  modulesRoot: string;
  // Milliseconds since the epoch (Date.now on the host).
  clock: () => number;
  // Wait between retries (a fake returns at once and advances its clock).
  sleep: (ms: number) => Promise<void>;
  // The block device at PATH (symlinks followed), or undefined when PATH is none.
  blockDev: (path: string) => Promise<BlockDev | undefined>;
  // Open NODE with O_EXCL and close it again; rejects with the errno error (EBUSY: claimed).
  openExclusive: (node: string) => Promise<void>;
  log?: Log;
};

// Linux dev_t encoding (glibc's major/minor).
export const major = (rdev: number) => Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
export const minor = (rdev: number) => Number(BigInt(rdev) & 0xffn) | Number((BigInt(rdev) >> 12n) & ~0xffn);

// hostBlockDev: stat through symlinks (and /proc's fd links, which reach the
// inode even when its path is gone); only block devices count.
async function hostBlockDev(path: string): Promise<BlockDev | undefined> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isBlockDevice()) return undefined;
  return { node: await realpath(path).catch(() => path), dev: `${major(st.rdev)}:${minor(st.rdev)}` };
}

// hostSys: the machine this process runs on.
export const hostSys: Sys = {
  run,
  stream,
  sysRoot: '/sys',
  procRoot: '/proc',
  devRoot: '/dev',
  modulesRoot: '/lib/modules',
  clock: Date.now,
  sleep: (ms) => new Promise<void>((r) => setTimeout(r, ms)),
  blockDev: hostBlockDev,
  openExclusive: async (node) => (await open(node, constants.O_RDONLY | constants.O_EXCL)).close(),
};
