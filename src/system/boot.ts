// Boot verbs: grub-editenv, bootctl, efibootmgr (and efivarfs), dracut,
// mkinitramfs, and reading one file back out of an initrd (lsinitrd, or
// unmkinitramfs where dracut is absent).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runVia, type RunResult, type Via } from './exec.ts';

// grubEnvSet: KEY=VALUE in a grubenv block (exit default: environment).
export async function grubEnvSet(envFile: string, key: string, value: string, v: Via = {}): Promise<void> {
  await runVia(v)('grub-editenv', [envFile, 'set', `${key}=${value}`], { exit: v.exit ?? 'environment' });
}

// grubEnvList: the grubenv block's KEY=VALUE lines; a missing block is empty (exit 1; exit default: environment).
export async function grubEnvList(envFile: string, v: Via = {}): Promise<string> {
  return (await runVia(v)('grub-editenv', [envFile, 'list'], { okCodes: [0, 1], exit: v.exit ?? 'environment' })).stdout;
}

// grubEnvUnset: remove KEY from a grubenv block (exit default: environment).
export async function grubEnvUnset(envFile: string, key: string, v: Via = {}): Promise<void> {
  await runVia(v)('grub-editenv', [envFile, 'unset', key], { exit: v.exit ?? 'environment' });
}

// bootctlEspPath: where systemd-boot's ESP is mounted, or undefined (no bootctl, no ESP).
export async function bootctlEspPath(v: Via = {}): Promise<string | undefined> {
  const r = await runVia(v)('bootctl', ['--print-esp-path'], { okCodes: [0, 1] }).catch(() => undefined);
  return r && r.exitCode === 0 ? r.stdout.trim() : undefined;
}

// bootctlOneshot: the entry systemd-boot boots next, once ('' clears it, and
// then a missing variable is no error). Exit default: environment.
export async function bootctlOneshot(esp: string, entry: string, v: Via = {}): Promise<void> {
  await runVia(v)('bootctl', [`--esp-path=${esp}`, 'set-oneshot', entry], { ...(entry ? {} : { okCodes: [0, 1] }), exit: v.exit ?? 'environment' });
}

// dracutBuild: dracut with ARGS and ENV (its private base directory) (exit default: environment).
export async function dracutBuild(args: readonly string[], env: Record<string, string>, v: Via = {}): Promise<RunResult> {
  return runVia(v)('dracut', args, { env, timeoutMs: 30 * 60_000, exit: v.exit ?? 'environment' });
}

// mkinitramfs: initramfs-tools' builder with a private configuration directory (exit default: environment).
export async function mkinitramfs(confDir: string, out: string, kver: string, env: Record<string, string>, v: Via = {}): Promise<RunResult> {
  return runVia(v)('mkinitramfs', ['-d', confDir, '-o', out, kver], { env, timeoutMs: 30 * 60_000, exit: v.exit ?? 'environment' });
}

// lsinitrdCopy: dracut's lsinitrd prints the file INNER of INITRD into COPY (exit default: environment).
export async function lsinitrdCopy(initrd: string, inner: string, copy: string, v: Via = {}): Promise<void> {
  await runVia(v)('sh', ['-c', `lsinitrd --file "$1" "$2" > "$3"`, 'sh', inner, initrd, copy], { timeoutMs: 600_000, exit: v.exit ?? 'environment' });
}

// unmkinitramfsCopy: initramfs-tools only — unpack INITRD into WORK and copy
// the first file whose path ends in INNER to COPY (an early microcode archive
// puts the rest under main/). Exit default: environment.
export async function unmkinitramfsCopy(initrd: string, inner: string, work: string, copy: string, v: Via = {}): Promise<void> {
  await runVia(v)('unmkinitramfs', [initrd, work], { timeoutMs: 600_000, exit: v.exit ?? 'environment' });
  await runVia(v)('sh', ['-c', `cp "$(find "$1" -path "*/${inner}" | head -n 1)" "$2"`, 'sh', work, copy], { exit: v.exit ?? 'environment' });
}

// mountEfivars: efivarfs on DIR (/sys/firmware/efi/efivars), which an
// initramfs without systemd does not mount (exit default: afterWrite).
export async function mountEfivars(dir: string, v: Via = {}): Promise<void> {
  await runVia(v)('mount', ['-t', 'efivarfs', 'efivarfs', dir], { exit: v.exit ?? 'afterWrite' });
}

// efivarsReady: the firmware's variables under SYSROOT readable and writable (efivarfs mounted when it is not).
export async function efivarsReady(sysRoot: string, v: Via = {}): Promise<void> {
  const vars = join(sysRoot, 'firmware/efi/efivars');
  if (!existsSync(vars) || readdirSync(vars).length === 0) await mountEfivars(vars, v);
}

// efibootmgrList: `efibootmgr -v`, the firmware's boot entries with their device paths (exit default: afterWrite).
export async function efibootmgrList(v: Via = {}): Promise<string> {
  return (await runVia(v)('efibootmgr', ['-v'], { exit: v.exit ?? 'afterWrite' })).stdout;
}

// efibootmgrDelete: remove BootNUM (exit default: afterWrite).
export async function efibootmgrDelete(num: string, v: Via = {}): Promise<void> {
  await runVia(v)('efibootmgr', ['-b', num, '-B'], { exit: v.exit ?? 'afterWrite' });
}

// efibootmgrCreate: a new entry LABEL for LOADER on partition PART of DISK,
// first in BootOrder (efibootmgr -c puts it there). Exit default: afterWrite.
// ARGS, when given, are the loader's arguments (UCS-2, as an EFI stub kernel reads them).
export async function efibootmgrCreate(disk: string, part: number, label: string, loader: string, v: Via = {}, args?: string): Promise<void> {
  const extra = args === undefined ? [] : ['-u', args];
  await runVia(v)('efibootmgr', ['-c', '-d', disk, '-p', String(part), '-L', label, '-l', loader, ...extra], { exit: v.exit ?? 'afterWrite' });
}

// mtools on a FAT partition that is not mounted (the kernel need not know vfat).
// MTOOLS_SKIP_CHECK: a partition's geometry fields need not match a floppy's.
const MTOOLS = { env: { MTOOLS_SKIP_CHECK: '1' } };

// fatReplaceDir: DIR on the FAT file system of PART emptied and made anew (exit default: environment).
export async function fatReplaceDir(part: string, dir: string, v: Via = {}): Promise<void> {
  await runVia(v)('mdeltree', ['-i', part, `::/${dir}`], { ...MTOOLS, okCodes: [0, 1], exit: v.exit ?? 'environment' });
  await runVia(v)('mmd', ['-i', part, `::/${dir}`], { ...MTOOLS, exit: v.exit ?? 'environment' });
}

// fatCopyIn: FILE as DEST (a path from the root) on the FAT file system of PART (exit default: environment).
export async function fatCopyIn(part: string, file: string, dest: string, v: Via = {}): Promise<void> {
  await runVia(v)('mcopy', ['-o', '-i', part, file, `::/${dest}`], { ...MTOOLS, exit: v.exit ?? 'environment' });
}

// fatCopyOut: SRC (a path from the root) of the FAT file system of PART as FILE (exit default: environment).
export async function fatCopyOut(part: string, src: string, file: string, v: Via = {}): Promise<void> {
  await runVia(v)('mcopy', ['-o', '-i', part, `::/${src}`, file], { ...MTOOLS, exit: v.exit ?? 'environment' });
}

// grubMkimage: a GRUB image of FORMAT (i386-pc, x86_64-efi) at OUT with MODULES and the embedded config CONFIG (exit default: environment).
export async function grubMkimage(format: string, out: string, config: string, modules: readonly string[], v: Via = {}): Promise<void> {
  await runVia(v)('grub-mkimage', ['-O', format, '-o', out, '-p', '/reimage-kit', '-c', config, ...modules], { exit: v.exit ?? 'environment' });
}

// filefrag: `filefrag -v -b512 FILE`, the file's extents in 512-byte units (exit default: environment).
export async function filefrag(file: string, v: Via = {}): Promise<string> {
  return (await runVia(v)('filefrag', ['-v', '-b512', file], { exit: v.exit ?? 'environment' })).stdout;
}

// fallocate: SIZE bytes reserved for FILE, in as few extents as the file system gives (exit default: environment).
export async function fallocate(file: string, size: number, v: Via = {}): Promise<void> {
  await runVia(v)('fallocate', ['-l', String(size), file], { exit: v.exit ?? 'environment' });
}
