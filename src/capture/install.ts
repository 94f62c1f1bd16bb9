// The "Restore factory state" entry put into the captured system, inside the
// raw copy of the reference disk (before it is packed, so the factory image
// carries it and a reset keeps it): the system's root, /boot and ESP are
// mounted read-write from the copy through loop offsets, and
// - GRUB (the system has /etc/grub.d): the grub.d script, and the entry in the
//   current /boot/grub/grub.cfg until the next update-grub;
// - systemd-boot (the ESP has loader/): a BLS entry, with the kernel and initrd
//   copied to the ESP (systemd-boot reads only the ESP).
// A system with neither is refused: the reset would have no way in.
import { chmod, copyFile, mkdir, mkdtemp, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blsEntry, FACTORY_ID, grubCfgWith, grubScript, GRUB_SCRIPT, type FactoryBoot } from '../arm/factory.ts';
import type { ArmSpec } from '../arm/entry.ts';
import type { Mount, Table } from '../bundle/manifest.ts';
import { ReimageError } from '../errors.ts';
import { mount, umount } from '../system/tools.ts';
import { consoleWords } from './console.ts';
import type { Cleanup } from '../util/cleanup.ts';

// The mounts the boot entries live on.
const BOOT_PATHS = ['/', '/boot', '/boot/efi', '/efi'];

const isDir = (p: string) =>
  stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );

export type Installed = { loaders: ('grub' | 'systemd-boot')[]; partitions: number[] };

// installEntry: the entry into the system inside RAW; returns the boot loaders served and the partitions changed.
export async function installEntry(raw: string, table: Table, plan: readonly Mount[], s: ArmSpec, b: FactoryBoot, files: { kernel: string; initrd: string }, cleanup: Cleanup): Promise<Installed> {
  const root = await mkdtemp(join(tmpdir(), 'reimage-capture-'));
  const removeDir = cleanup.push(`remove ${root}`, () => rmdir(root));
  const mounted: { path: string; undo: () => Promise<void> }[] = [];
  const used = plan.filter((m) => BOOT_PATHS.includes(m.path) && !m.options);
  try {
    for (const m of used) {
      const p = table.partitions.find((x) => x.number === m.partition);
      if (!p) continue;
      const dir = join(root, m.path);
      await mkdir(dir, { recursive: true });
      const ss = table.sectorSize;
      await mount(raw, dir, m.fstype, `rw,loop,offset=${p.start * ss},sizelimit=${p.size * ss}`);
      mounted.push({ path: m.path, undo: cleanup.push(`unmount ${dir}`, () => umount(dir)) });
    }
    const loaders: Installed['loaders'] = [];
    const text = (p: string) => readFile(join(root, p), 'utf8').catch(() => undefined);
    // The captured system's console, not the capturing host's (capture/console.ts).
    const consoles = consoleWords(await text('boot/grub/grub.cfg'), await text('etc/default/grub'), await text('etc/kernel/cmdline'));
    s = { ...s, extra: [...s.extra.filter((w) => !/^(console|earlycon)=/.test(w)), ...consoles] };
    if (await isDir(join(root, 'etc/grub.d'))) {
      const script = join(root, 'etc/grub.d', GRUB_SCRIPT);
      await writeFile(script, grubScript(s, b));
      await chmod(script, 0o755);
      const cfg = join(root, 'boot/grub/grub.cfg');
      const old = await readFile(cfg, 'utf8').catch(() => undefined);
      if (old !== undefined) await writeFile(cfg, grubCfgWith(old, s, b));
      loaders.push('grub');
    }
    for (const esp of ['boot/efi', 'efi']) {
      if (!(await isDir(join(root, esp, 'loader')))) continue;
      await mkdir(join(root, esp, FACTORY_ID), { recursive: true });
      await mkdir(join(root, esp, 'loader/entries'), { recursive: true });
      await copyFile(files.kernel, join(root, esp, FACTORY_ID, 'vmlinuz'));
      await copyFile(files.initrd, join(root, esp, FACTORY_ID, 'initrd.img'));
      await writeFile(join(root, esp, 'loader/entries', `${FACTORY_ID}.conf`), blsEntry(s, `/${FACTORY_ID}/vmlinuz`, `/${FACTORY_ID}/initrd.img`));
      loaders.push('systemd-boot');
      break;
    }
    if (!loaders.length) {
      throw new ReimageError(
        'environment',
        'the captured system has neither GRUB (/etc/grub.d) nor systemd-boot (loader/ on an ESP mounted at /boot/efi or /efi), so no "Restore factory state" entry can be installed; nothing was written: install a boot loader, or capture with --out DIR',
      );
    }
    return { loaders, partitions: used.map((m) => m.partition) };
  } finally {
    for (const m of mounted.reverse()) await m.undo();
    await removeDir();
  }
}
