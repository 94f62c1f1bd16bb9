// The firmware that boots the reimaged disk: SeaBIOS (QEMU's default, for a
// BIOS boot loader) or OVMF (UEFI; Debian's ovmf package). OVMF's variable
// store is copied into the work directory so each boot starts from a clean
// one: the disk must boot through its removable-media path
// (EFI/BOOT/BOOTX64.EFI), as a new machine or a replaced disk would.
import { copyFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ReimageError } from '../errors.ts';
import type { Ovmf } from './qemu.ts';

export const FIRMWARES = ['bios', 'efi'] as const;
export type Firmware = (typeof FIRMWARES)[number];

const OVMF_PAIRS = [
  ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'],
  ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
  ['/usr/share/edk2/ovmf/OVMF_CODE.fd', '/usr/share/edk2/ovmf/OVMF_VARS.fd'],
] as const;

// ovmf: OVMF's code and a fresh copy of its variables in WORK (ROOT: where /usr/share is, for tests).
export async function ovmf(work: string, root = ''): Promise<Ovmf> {
  const pair = OVMF_PAIRS.find(([c, v]) => existsSync(root + c) && existsSync(root + v));
  if (!pair) throw new ReimageError('environment', `OVMF not found (looked for ${OVMF_PAIRS[0][0]}): install it (Debian: ovmf) to boot with --firmware efi`);
  const vars = join(work, 'ovmf-vars.fd');
  await copyFile(root + pair[1], vars);
  return { code: root + pair[0], vars };
}
