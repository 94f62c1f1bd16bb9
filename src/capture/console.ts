// The console the "Restore factory state" entry boots with: the captured
// system's own (a factory reset runs on the machine the image was made for,
// not on the machine that ran `reimage capture`, whose /proc/cmdline may name
// another console or none). Read from the system's GRUB configuration: the
// first `linux` line of /boot/grub/grub.cfg, then GRUB_CMDLINE_LINUX and
// GRUB_CMDLINE_LINUX_DEFAULT of /etc/default/grub (what update-grub puts there),
// then /etc/kernel/cmdline (systemd-boot's kernel-install). None: the entry
// names no console (the machine's default), never the capturing host's.
import { splitCmdline } from '../boot/cmdline.ts';

const CONSOLE = /^(console|earlycon)=/;

// consoleWords: the console= and earlycon= words of the captured system, in order, each once.
export function consoleWords(grubCfg: string | undefined, defaultGrub: string | undefined, kernelCmdline?: string): string[] {
  const words: string[] = [];
  const linux = grubCfg?.split('\n').find((l) => /^\s*linux(16|efi)?\s/.test(l));
  if (linux) words.push(...splitCmdline(linux.trim()).slice(2));
  for (const v of ['GRUB_CMDLINE_LINUX', 'GRUB_CMDLINE_LINUX_DEFAULT']) {
    const m = defaultGrub?.match(new RegExp(`^\\s*${v}=(["']?)(.*)\\1\\s*$`, 'm'));
    if (m?.[2]) words.push(...splitCmdline(m[2]));
  }
  if (kernelCmdline) words.push(...splitCmdline(kernelCmdline));
  return [...new Set(words.filter((w) => CONSOLE.test(w)))];
}
