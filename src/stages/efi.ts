// The firmware's boot entry after the write (UEFI). The image's ESP has a new
// partition GUID, so the entry the firmware booted the old system by now
// points at nothing. The choice: remove every entry whose loader is on a
// partition of the old table or of the image's own table (stale, or about to
// be replaced), then create one entry for the image's removable-media loader
// (\EFI\BOOT\BOOTX64.EFI on its ESP), first in BootOrder. That path is the one
// a firmware boots with no entry at all and the one every image meant for many
// machines carries; shim's fallback, when the image has it, then writes the
// distribution's own entry on the first boot. Nothing here fails the run: the
// image is written and restored by now; what happened (updated, skipped,
// failed, and why) goes into the report and the log.
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { ESP_TYPE, parseBootVars, removableLoader, staleEntries } from '../target/efientries.ts';
import { UEFI_LABEL } from '../target/bootkit.ts';
import { efibootmgrCreate, efibootmgrDelete, efibootmgrList, efivarsReady, mount, umount } from '../system/tools.ts';
import type { PartIdentity } from '../target/partitions.ts';
import type { EfiReport, Run } from './context.ts';
import type { Passed } from './phase.ts';

// bootEntry: the firmware entry for the new ESP on P's disk (see the top of
// this file); OLD are the old system's partitions, PARTS the new ones.
export async function bootEntry(run: Run, p: Passed, old: readonly PartIdentity[], parts: readonly PartIdentity[]): Promise<EfiReport> {
  const { sys, log } = run;
  const m = p.bundle.manifest;
  const removed: string[] = [];
  const done = (outcome: EfiReport['outcome'], reason: string, created?: string): EfiReport => {
    (outcome === 'failed' ? log.warn : log.info)(`UEFI boot entry ${outcome}: ${reason}`);
    return { outcome, reason, removed, ...(created ? { created } : {}) };
  };
  const esp = m.table.label === 'gpt' ? m.table.partitions.find((x) => x.type.toLowerCase() === ESP_TYPE) : undefined;
  if (!esp) return done('skipped', 'the image has no EFI system partition');
  const efi = join(sys.sysRoot, 'firmware/efi');
  if (!existsSync(efi)) return done('skipped', `this machine did not start by UEFI (no ${efi}): it boots by BIOS, which has no entries to update`);
  const node = parts.find((x) => x.number === esp.number)?.node;
  const loader = removableLoader();
  try {
    await efivarsReady(sys.sysRoot, sys);
    // Kept partitions are not gone: their entries (a recovery partition's) stay, but for a boot kit's
    // entry on one, a leftover of an earlier run (this run's own, while it is live, is not touched).
    const keptIds = new Set(p.kept.map((k) => k.uuid.toLowerCase()));
    const gone = new Set(
      [...old.map((x) => x.partuuid), ...m.table.partitions.map((x) => x.uuid)]
        .filter((u): u is string => !!u)
        .map((u) => u.toLowerCase())
        .filter((u) => !keptIds.has(u)),
    );
    const vars = parseBootVars(await efibootmgrList(sys));
    const live = p.kit?.uefi && !p.kit.done ? p.kit.uefi.partuuid : undefined;
    const leftovers = vars.entries.filter((e) => e.label === UEFI_LABEL && e.partuuid !== live && keptIds.has(e.partuuid ?? ''));
    for (const e of [...staleEntries(vars, gone), ...leftovers]) {
      await efibootmgrDelete(e.num, sys);
      removed.push(`Boot${e.num} ${e.label} (${e.loader ?? 'no file'} on PARTUUID ${e.partuuid})`);
    }
    if (!loader) return done('failed', `no removable-media loader is known for the architecture ${process.arch}: no entry was created`);
    if (!node || !(await hasFile(run, node, loader))) {
      return done('failed', `the image's ESP (partition ${esp.number}) has no ${loader}: no entry was created; the firmware boots the disk only if it finds a loader on its own`);
    }
    const label = m.version ? `reimage ${m.version}` : 'reimage';
    await efibootmgrCreate(p.disk.node, esp.number, label, loader, sys);
    return done('updated', `"${label}": ${loader} on partition ${esp.number} of ${p.disk.node}, first in BootOrder`, `${label} ${loader}`);
  } catch (e) {
    return done('failed', `${(e as Error).message}; the firmware may still boot ${loader ?? 'the ESP'} as removable media`);
  }
}

// hasFile: whether the vfat on NODE holds LOADER (FAT names ignore case), mounted read-only for the look.
async function hasFile(run: Run, node: string, loader: string): Promise<boolean> {
  const dir = join(run.runDir, 'esp');
  mkdirSync(dir, { recursive: true });
  await mount(node, dir, 'vfat', 'ro,nosuid,nodev,noexec', { ...run.sys, exit: 'afterWrite' });
  try {
    return existsSync(join(dir, ...loader.split('\\').filter(Boolean)));
  } finally {
    await umount(dir, run.sys);
    // The run directory is removed with rmdir at the end: leave nothing in it.
    rmdirSync(dir);
  }
}
