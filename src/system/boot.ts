// Boot verbs: grub-editenv, bootctl, efibootmgr (and efivarfs), dracut,
// mkinitramfs, and reading one file back out of an initrd (lsinitrd, or
// unmkinitramfs where dracut is absent).
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
export async function efibootmgrCreate(disk: string, part: number, label: string, loader: string, v: Via = {}): Promise<void> {
  await runVia(v)('efibootmgr', ['-c', '-d', disk, '-p', String(part), '-L', label, '-l', loader], { exit: v.exit ?? 'afterWrite' });
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
