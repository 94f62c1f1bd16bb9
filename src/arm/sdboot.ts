// systemd-boot: two Boot Loader Specification entries on the ESP (the kernel
// and initrd copied next to them: systemd-boot reads only the ESP) and a
// one-shot via `bootctl set-oneshot` (the LoaderEntryOneShot EFI variable,
// cleared by the boot loader when used).
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { bootctlEspPath, bootctlOneshot } from '../system/tools.ts';
import { ENTRY_IDS, TITLES, kernelArgs, type ArmSpec } from './entry.ts';

// espPath: the ESP systemd-boot uses, or undefined when there is none.
export const espPath = (): Promise<string | undefined> => bootctlEspPath();

export async function armSdBoot(s: ArmSpec, esp: string, bootDir: string, initrd: string): Promise<string> {
  await mkdir(`${esp}/reimage`, { recursive: true });
  await mkdir(`${esp}/loader/entries`, { recursive: true });
  await copyFile(`${bootDir}/vmlinuz-${s.kver}`, `${esp}/reimage/vmlinuz`);
  await copyFile(initrd, `${esp}/reimage/initrd.img`);
  for (const [kind, mode] of [
    ['armed', 'auto'],
    ['interactive', 'interactive'],
  ] as const) {
    const text = [`title ${TITLES[kind]}`, `linux /reimage/vmlinuz`, `initrd /reimage/initrd.img`, `options ${kernelArgs(s, mode)}`, ''].join('\n');
    await writeFile(`${esp}/loader/entries/${ENTRY_IDS[kind]}.conf`, text);
  }
  await bootctlOneshot(esp, `${ENTRY_IDS.armed}.conf`);
  return `systemd-boot: "${TITLES.armed}" is the next boot (once); "${TITLES.interactive}" stays in the menu`;
}

export async function disarmSdBoot(esp: string): Promise<string> {
  await bootctlOneshot(esp, '');
  for (const id of Object.values(ENTRY_IDS)) await rm(`${esp}/loader/entries/${id}.conf`, { force: true });
  await rm(`${esp}/reimage`, { recursive: true, force: true });
  return 'systemd-boot: reimage entries removed and the one-shot cleared';
}
