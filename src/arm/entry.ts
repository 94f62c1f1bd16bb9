// What an armed boot entry boots: the current kernel with the reimage initrd
// and the kernel arguments that arm it. Two entries are installed: "armed"
// (mode auto, chosen once as the next boot) and "asks first" (mode
// interactive, stays in the menu for a technician).
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import { splitCmdline } from '../boot/cmdline.ts';
import { parseLocation } from '../boot/locate.ts';
import { isUrl } from '../util/url.ts';
import { NETWORK_ARGS } from '../boot/network.ts';
import { lockdownArgs } from '../boot/lockdown.ts';
import { parseSelector } from '../boot/select.ts';

export const ENTRY_IDS = { armed: 'reimage-armed', interactive: 'reimage-interactive' } as const;
export const TITLES = {
  armed: 'Reimage this machine NOW - REPLACES EVERYTHING ON THE DISK',
  interactive: 'Reimage this machine (asks first) - REPLACES EVERYTHING ON THE DISK',
} as const;

// lockdown: what keeps the initramfs from offering a root shell (boot/lockdown.ts).
export type ArmSpec = { bundle: string; target?: string; kver: string; lockdown: string[]; extra: string[] };

export type ArmSpecOptions = { kver?: string; cmdline?: string; allowShell?: boolean };

// spec: validated arguments; the console= settings of the running system are
// kept; unless the baked policy allows a shell, the shell lockdown is added.
export async function armSpec(bundle: string, target: string | undefined, o: ArmSpecOptions = {}): Promise<ArmSpec> {
  // A bundle URL needs the network up in the initrd (dracut's network module reads these arguments).
  const url = isUrl(bundle);
  if (!url) parseLocation(bundle);
  if (target) parseSelector(target);
  const words = splitCmdline(await readFile(o.cmdline ?? '/proc/cmdline', 'utf8').catch(() => ''));
  const extra = [...words.filter((w) => /^(console|earlycon|loglevel)=/.test(w) || w === 'quiet'), ...(url ? NETWORK_ARGS : [])];
  return { bundle, ...(target ? { target } : {}), kver: o.kver ?? release(), lockdown: lockdownArgs(o.allowShell === true), extra };
}

// args: the kernel command line of one entry.
export function kernelArgs(s: ArmSpec, mode: 'auto' | 'interactive'): string {
  const q = (v: string) => (/\s/.test(v) ? `"${v}"` : v);
  return ['rd.reimage', `rd.reimage.bundle=${q(s.bundle)}`, ...(s.target ? [`rd.reimage.target=${q(s.target)}`] : []), `rd.reimage.mode=${mode}`, ...s.lockdown, ...s.extra].join(' ');
}
