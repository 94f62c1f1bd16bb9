// The persistent "Restore factory state" boot entry (reimage capture). Unlike
// the one-shot entries of `arm`, it stays: for GRUB it is an /etc/grub.d/
// script in the captured system, so every `update-grub` / `grub-mkconfig`
// writes it again (its output is also put into the current grub.cfg, between
// markers, so the entry is there before the next update-grub); for
// systemd-boot it is a Boot Loader Specification entry on the ESP, which no
// tool regenerates. Both boot the reimage kernel and initrd in interactive mode
// (the warning and the "yes" come first), with the recovery bundle and the
// target by stable identity: the disk that carries the recovery partition.
import { kernelArgs, type ArmSpec } from './entry.ts';

export const FACTORY_ID = 'reimage-factory';
export const FACTORY_TITLE = 'Restore factory state (asks first) - REPLACES THE SYSTEM, keeps the kept partitions';
// Its name sorts after 41_custom, so the entry comes after the system's own.
export const GRUB_SCRIPT = '42_reimage_factory';
export const GRUB_BEGIN = '### BEGIN reimage factory entry (reimage capture) ###';
export const GRUB_END = '### END reimage factory entry ###';

// Where the GRUB entry finds the kernel and initrd: the recovery file system's UUID and paths inside it.
export type FactoryBoot = { fsUuid: string; kernel: string; initrd: string };

// grubEntry: the menuentry text (what the grub.d script prints).
export function grubEntry(s: ArmSpec, b: FactoryBoot): string {
  return [
    `menuentry '${FACTORY_TITLE}' --id ${FACTORY_ID} {`,
    `\tsearch --no-floppy --fs-uuid --set=root ${b.fsUuid}`,
    `\techo 'reimage: factory reset - you will be asked before anything is written'`,
    `\tlinux ${b.kernel} ${kernelArgs(s, 'interactive')}`,
    `\tinitrd ${b.initrd}`,
    '}',
  ].join('\n');
}

// grubScript: the /etc/grub.d/ script (POSIX sh, shellcheck clean). The entry's
// text is fixed at capture time; a quoted here-document prints it verbatim.
export function grubScript(s: ArmSpec, b: FactoryBoot): string {
  return [
    '#!/bin/sh',
    '# Installed by reimage capture: the persistent "Restore factory state" entry.',
    '# It boots the reimage kernel and initrd kept on the recovery partition',
    '# (PARTLABEL reimage-recovery) in interactive mode. Remove this file to drop it.',
    'set -e',
    `echo "Adding reimage factory reset entry" >&2`,
    "cat <<'REIMAGE_EOF'",
    grubEntry(s, b),
    'REIMAGE_EOF',
    '',
  ].join('\n');
}

// grubCfgWith: grub.cfg with the entry between markers (an old block replaced), until the next update-grub rewrites it.
export function grubCfgWith(cfg: string, s: ArmSpec, b: FactoryBoot): string {
  const esc = (t: string) => t.replace(/[()[\]{}.*+?^$|\\]/g, '\\$&');
  const without = cfg.replace(new RegExp(`${esc(GRUB_BEGIN)}[\\s\\S]*?${esc(GRUB_END)}\\n?`), '');
  return `${without}${without.endsWith('\n') || without === '' ? '' : '\n'}${GRUB_BEGIN}\n${grubEntry(s, b)}\n${GRUB_END}\n`;
}

// blsEntry: the systemd-boot entry (loader/entries/reimage-factory.conf); paths are on the ESP.
export function blsEntry(s: ArmSpec, kernel: string, initrd: string): string {
  return [`title ${FACTORY_TITLE}`, `linux ${kernel}`, `initrd ${initrd}`, `options ${kernelArgs(s, 'interactive')}`, ''].join('\n');
}
