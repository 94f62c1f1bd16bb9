// The target named on the command line, looked at before the flow starts, so
// the two commonest slips get the sentence they need: a path that does not
// exist (a typo, a disk that is not plugged in) and a partition given where a
// whole disk is wanted (the message names the disk it belongs to). Everything
// else about the target is checked by the flow (src/target/check.ts).
import { readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { targetError } from '../errors.ts';
import { major, minor } from '../target/sysfs.ts';

// checkTargetPath: refuses (exit 4) a PATH that does not exist or is a partition; WHAT names it ("target", "device").
export async function checkTargetPath(path: string, what: string, sys = '/sys'): Promise<void> {
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => e);
  if (st instanceof Error) {
    if (st.code === 'ENOENT') throw targetError(`${what} ${path} does not exist: give a whole disk such as /dev/sda or /dev/disk/by-id/… (lsblk -d lists the disks)`, { path });
    return;
  }
  if (!st.isBlockDevice()) return;
  const dev = `${major(st.rdev)}:${minor(st.rdev)}`;
  const sysPath = await realpath(`${sys}/dev/block/${dev}`).catch(() => undefined);
  if (!sysPath) return;
  const number = (await readFile(`${sysPath}/partition`, 'utf8').catch(() => '')).trim();
  if (!number) return;
  const disk = `/dev/${basename(dirname(sysPath))}`;
  throw targetError(`${what} ${path} is partition ${number} of the disk ${disk}, not a whole disk: give ${disk} to reimage the whole disk`, { path, disk, partition: Number(number) });
}
