// GRUB: two menu entries in a marked block of /boot/grub/custom.cfg (read at
// boot by Debian/Ubuntu's 41_custom, no update-grub needed) and a try counter
// reimage_tries in grubenv: each boot that reads the menu uses one try and
// makes the armed entry the default, so a power cut before the point of no
// return (while the bundle is staged) boots the reimage again, and after
// TRIES boots the usual default comes back (a run that keeps refusing does
// not hold the machine). Past the point of no return the boot kit, not GRUB,
// brings the machine back (stages/bootkit.ts). GRUB cannot write its
// environment block on btrfs, ZFS, LVM, RAID or encrypted devices: there the
// counter would never go down and the machine would loop into reimage, so
// arming is refused. Where the target is found on this machine and is not
// the disk that holds GRUB's environment, a success would not end the
// counter (the old grubenv stays): there the one-shot next_entry is used.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { ReimageError } from '../errors.ts';
import { selectTarget, wholeDisks } from '../boot/select.ts';
import { findMount, grubEnvList, grubEnvSet, grubEnvUnset, type MountOf } from '../system/tools.ts';
import { disksBelow } from '../target/sysfs.ts';
import { ENTRY_IDS, TITLES, kernelArgs, type ArmSpec } from './entry.ts';

// Boots of the armed entry one arm allows.
export const TRIES = 3;
const TRIES_VAR = 'reimage_tries';

const BEGIN = '### BEGIN reimage (managed by reimage arm; reimage disarm removes it) ###';
const END = '### END reimage ###';

// envRefusal: why GRUB cannot keep a one-shot on this file system, or undefined.
export function envRefusal(fstype: string, source: string): string | undefined {
  if (['btrfs', 'zfs'].includes(fstype)) return `GRUB cannot write its environment block on ${fstype}`;
  if (/^\/dev\/(mapper\/|dm-)/.test(source)) return `GRUB cannot write its environment block on a device-mapper device (LVM or encryption: ${source})`;
  if (/^\/dev\/md/.test(source)) return `GRUB cannot write its environment block on software RAID (${source})`;
  return undefined;
}

type Where = MountOf;
const whereIs = (path: string) => findMount(path);

// block: the custom.cfg text of both entries. Paths are relative to the file system holding them.
export function block(s: ArmSpec, bootFs: Where, bootDir: string, initrd: string): string {
  const rel = (p: string) => (bootFs.target === '/' ? p : p.slice(bootFs.target.length) || '/');
  const entry = (kind: 'armed' | 'interactive', mode: 'auto' | 'interactive') => [
    `menuentry '${TITLES[kind]}' --id ${ENTRY_IDS[kind]} {`,
    ...(bootFs.uuid ? [`\tsearch --no-floppy --fs-uuid --set=root ${bootFs.uuid}`] : []),
    `\techo 'reimage: this will replace everything on the disk'`,
    `\tlinux ${rel(`${bootDir}/vmlinuz-${s.kver}`)} ${kernelArgs(s, mode)}`,
    `\tinitrd ${rel(initrd)}`,
    '}',
  ];
  // The counter: read from the grubenv beside custom.cfg (where arm wrote it), one down and saved, and the armed entry
  // the default only when that save worked (a counter that cannot go down must never hold the machine).
  const counter = [
    'insmod loadenv',
    'set reimage_env="${prefix}/grubenv"',
    'if [ -n "${config_directory}" ]; then set reimage_env="${config_directory}/grubenv"; fi',
    `load_env -f "\${reimage_env}" ${TRIES_VAR}`,
    `set reimage_next=`,
    ...Array.from({ length: TRIES }, (_, i) => `if [ "\${${TRIES_VAR}}" = ${TRIES - i} ]; then set reimage_next=${TRIES - i - 1}; fi`),
    'if [ -n "${reimage_next}" ]; then',
    `\tset ${TRIES_VAR}="\${reimage_next}"`,
    `\tif save_env -f "\${reimage_env}" ${TRIES_VAR}; then set default=${ENTRY_IDS.armed}; fi`,
    'fi',
  ];
  return [BEGIN, ...counter, ...entry('armed', 'auto'), ...entry('interactive', 'interactive'), END, ''].join('\n');
}

const strip = (text: string) => text.replace(new RegExp(`${BEGIN.replace(/[()[\]{}.*+?^$|\\]/g, '\\$&')}[\\s\\S]*?${END}\\n?`), '');

export async function armGrub(s: ArmSpec, bootDir: string, initrd: string): Promise<string> {
  const grubDir = `${bootDir}/grub`;
  const env = await whereIs(grubDir);
  const why = envRefusal(env.fstype, env.source);
  if (why) throw new ReimageError('environment', `cannot arm a one-shot reimage: ${why}, so the machine would boot into reimage forever; use systemd-boot, or put /boot/grub on a plain partition`);
  const cfg = await readFile(`${grubDir}/grub.cfg`, 'utf8').catch(() => '');
  if (!cfg.includes('custom.cfg')) throw new ReimageError('environment', `${grubDir}/grub.cfg does not read custom.cfg (the 41_custom script): run update-grub, then arm again`);
  const custom = `${grubDir}/custom.cfg`;
  const old = await readFile(custom, 'utf8').catch(() => '');
  await writeFile(custom, strip(old) + block(s, await whereIs(bootDir), bootDir, initrd));
  if (await elsewhere(s.target, env.source)) {
    await grubEnvSet(`${grubDir}/grubenv`, 'next_entry', ENTRY_IDS.armed);
    return `GRUB: "${TITLES.armed}" is the next boot (once: the target ${s.target} is not the disk that holds ${grubDir}, so a success would not end a try counter); "${TITLES.interactive}" stays in the menu`;
  }
  await grubEnvSet(`${grubDir}/grubenv`, TRIES_VAR, String(TRIES));
  return `GRUB: "${TITLES.armed}" is the default of the next ${TRIES} boots (a cut before the point of no return tries again; then the usual default); "${TITLES.interactive}" stays in the menu`;
}

// elsewhere: whether TARGET is found on this machine as a disk other than the one below SOURCE (GRUB's file system).
// Not found (an image prepared offline, another machine's selector): not elsewhere.
async function elsewhere(target: string | undefined, source: string): Promise<boolean> {
  if (!target) return false;
  const d = await selectTarget([target], undefined, await wholeDisks()).catch(() => undefined);
  const st = await stat(source).catch(() => undefined);
  if (!d || !st?.isBlockDevice()) return false;
  return !(await disksBelow(st.rdev)).includes(d.name);
}

export async function disarmGrub(bootDir: string): Promise<string> {
  const grubDir = `${bootDir}/grub`;
  const custom = `${grubDir}/custom.cfg`;
  const old = await readFile(custom, 'utf8').catch(() => undefined);
  if (old !== undefined) await writeFile(custom, strip(old));
  const env = await grubEnvList(`${grubDir}/grubenv`);
  // next_entry: what arm set before the counter.
  if (env.includes(`next_entry=${ENTRY_IDS.armed}`)) await grubEnvUnset(`${grubDir}/grubenv`, 'next_entry');
  if (new RegExp(`^${TRIES_VAR}=`, 'm').test(env)) await grubEnvUnset(`${grubDir}/grubenv`, TRIES_VAR);
  return 'GRUB: reimage entries removed and the try counter cleared';
}
