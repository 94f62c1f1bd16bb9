// `reimage arm` / `reimage disarm` on the running system: the boot loader is
// detected (systemd-boot when bootctl finds an ESP with a loader, else GRUB),
// the reimage initrd is built (or copied) into the boot directory, and the
// entries and one-shot installed; disarm undoes all of it.
import { copyFile, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { ReimageError } from '../errors.ts';
import { loadConfig } from '../boot/config.ts';
import { buildInitrd } from '../boot/initrd.ts';
import type { Log } from '../util/log.ts';
import { armSpec, type ArmSpec } from './entry.ts';
import { isUrl } from '../util/url.ts';
import { armGrub, disarmGrub } from './grub.ts';
import { armSdBoot, disarmSdBoot, espPath } from './sdboot.ts';

export type ArmOptions = { bundle: string; target?: string; initrd?: string; config?: string; kver?: string; bootDir: string; cmdline?: string };

type Loader = { kind: 'sdboot'; esp: string } | { kind: 'grub' };

async function detect(bootDir: string): Promise<Loader> {
  const esp = await espPath();
  if (esp && existsSync(`${esp}/loader`)) return { kind: 'sdboot', esp };
  if (existsSync(`${bootDir}/grub/grub.cfg`)) return { kind: 'grub' };
  throw new ReimageError('environment', `no boot loader reimage can arm: neither systemd-boot (bootctl) nor GRUB (${bootDir}/grub/grub.cfg) was found`);
}

// entrySpec: what the entries boot; the shell lockdown follows the policy
// baked into the initrd (--config), and without one the lockdown applies.
// The VM tests boot exactly this (test/helpers/vm.ts).
export async function entrySpec(o: Pick<ArmOptions, 'bundle' | 'target' | 'config' | 'kver' | 'cmdline'>): Promise<ArmSpec> {
  const allowShell = o.config ? (await loadConfig(o.config)).allowShell : false;
  return armSpec(o.bundle, o.target, { ...(o.kver ? { kver: o.kver } : {}), ...(o.cmdline ? { cmdline: o.cmdline } : {}), allowShell });
}

export async function arm(o: ArmOptions, log: Log): Promise<string> {
  const spec = await entrySpec(o);
  if (!existsSync(`${o.bootDir}/vmlinuz-${spec.kver}`)) throw new ReimageError('environment', `${o.bootDir}/vmlinuz-${spec.kver} does not exist: give --kver of an installed kernel`);
  const loader = await detect(o.bootDir);
  const initrd = `${o.bootDir}/reimage-initrd-${spec.kver}.img`;
  if (o.initrd) await copyFile(o.initrd, initrd);
  else await buildInitrd({ out: initrd, kver: spec.kver, network: isUrl(spec.bundle), ...(o.config ? { config: o.config } : {}) }, log);
  const done = loader.kind === 'sdboot' ? await armSdBoot(spec, loader.esp, o.bootDir, initrd) : await armGrub(spec, o.bootDir, initrd);
  log.info(done);
  return done;
}

export async function disarm(bootDir: string, log: Log): Promise<string> {
  const loader = await detect(bootDir);
  const done = loader.kind === 'sdboot' ? await disarmSdBoot(loader.esp) : await disarmGrub(bootDir);
  for (const f of await readdir(bootDir)) if (/^reimage-initrd-.*\.img$/.test(f)) await rm(`${bootDir}/${f}`, { force: true });
  log.info(done);
  return done;
}
