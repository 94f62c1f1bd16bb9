// `reimage kit`: the power-loss boot kit, made ahead of time on the partition
// of the target that holds the bundle (kept by every reimage that reads the
// bundle from it). reimage-kit/ holds the kernel, the reimage initrd and a
// GRUB i386-pc core image whose embedded script boots them by block list with
// the armed kernel arguments, and kit.json: the boot sector (GRUB's boot.img
// pointed at the core's absolute sector) and where each file lies on the disk
// with its sha256. The run lays that boot sector on the disk at its point of
// no return (stages/bootkit.ts). Files are preallocated and written in place,
// so a later write to the partition does not move them; a run checks the
// disk's bytes against kit.json before it relies on them.
//
// With --esp, the kit has a UEFI part too: the kernel (an EFI stub) and the
// initrd copied with mtools onto a FAT partition of the same disk (not
// mounted: the kernel making the kit need not know vfat), named in kit.json
// by PARTUUID with their sha256. Every run that relies on it must keep that
// partition (the bundle's or the policy's keep); the run makes the firmware
// entry that boots it (stages/bootkit.ts).
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, realpath, rm, rmdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { tmpdir } from 'node:os';
import { ReimageError, usageError } from '../errors.ts';
import { buildInitrd } from '../boot/initrd.ts';
import { blkidProbe, fallocate, fatCopyIn, fatCopyOut, fatReplaceDir, filefrag, grubMkimage, mount, syncAll, umount } from '../system/tools.ts';
import { absolute, bootCode, KIT_DIR, KIT_FORMAT, kitScript, parseFilefrag, pointCore, type FatFile, type Kit, type Pieces } from '../target/bootkit.ts';
import type { Log } from '../util/log.ts';
import { kernelArgs } from './entry.ts';
import { entrySpec } from './index.ts';

export type KitOptions = { part: string; esp?: string; bundle: string; target?: string; initrd?: string; config?: string; kver?: string; cmdline?: string; bootDir: string };

const BOOT_IMG = '/usr/lib/grub/i386-pc/boot.img';
const CORE_MODULES = ['biosdisk', 'linux', 'echo', 'boot', 'serial', 'terminal'];

// makeKit: the kit on the partition O.part (see the top of this file); returns a one-line summary.
export async function makeKit(o: KitOptions, log: Log): Promise<string> {
  const node = await realpath(o.part).catch(() => {
    throw usageError(`--part ${o.part} does not exist: give the partition that holds the bundle, e.g. /dev/sda3`);
  });
  const name = basename(node);
  const startText = await readFile(`/sys/class/block/${name}/start`, 'utf8').catch(() => undefined);
  if (startText === undefined) throw usageError(`--part ${o.part} is not a partition (no /sys/class/block/${name}/start): give the partition that holds the bundle`);
  const partStart = Number(startText.trim());
  const diskName = await diskOf(node);
  const esp = o.esp ? await fatPart(o.esp, node, diskName) : undefined;
  // The BIOS part's boot sector and block lists count 512-byte sectors; a 4Kn disk boots by UEFI only.
  const sector = Number((await readFile(`/sys/class/block/${diskName}/queue/logical_block_size`, 'utf8').catch(() => '512')).trim());
  const bios = sector === 512;
  if (!bios && !esp) throw usageError(`${diskName} has ${sector}-byte sectors: the kit's BIOS part needs 512-byte ones; give --esp (a FAT partition of the same disk) for the UEFI part`);
  if (bios && !existsSync(BOOT_IMG)) throw new ReimageError('environment', `${BOOT_IMG} is missing: install grub-pc-bin (GRUB's BIOS images) to make a kit`);
  const spec = await entrySpec(o);
  const kernel = `${o.bootDir}/vmlinuz-${spec.kver}`;
  if (!existsSync(kernel)) throw usageError(`${kernel} does not exist: give --kver of an installed kernel`);
  const args = kernelArgs(spec, 'auto');
  const work = await mkdtemp(join(tmpdir(), 'reimage-kit-'));
  const mnt = join(work, 'part');
  await mkdir(mnt);
  try {
    let initrd = o.initrd;
    if (!initrd) {
      initrd = join(work, 'initrd.img');
      await buildInitrd({ out: initrd, kver: spec.kver, network: false, ...(o.config ? { config: o.config } : {}) }, log);
    }
    const fs = (await blkidProbe(node)).TYPE;
    if (!fs) throw usageError(`${node} has no file system: the kit goes on the file system that holds the bundle`);
    await mount(node, mnt, fs, 'rw,nosuid,nodev,noexec');
    try {
      const dir = join(mnt, KIT_DIR);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { mode: 0o700 });
      const b = bios ? await biosPart(dir, node, partStart, kernel, initrd, args, work) : undefined;
      if (esp) await fatReplaceDir(esp.node, KIT_DIR);
      const uefi = esp ? { partuuid: esp.partuuid, kernel: await fatPlaced(esp.node, 'vmlinuz', kernel, work), initrd: await fatPlaced(esp.node, 'initrd.img', initrd, work) } : undefined;
      const kit: Kit = {
        format: KIT_FORMAT,
        created: new Date().toISOString(),
        partStart,
        cmdline: args,
        ...(b ? { bios: b.part } : {}),
        ...(uefi ? { uefi } : {}),
      };
      await writeFile(join(dir, 'kit.json'), JSON.stringify(kit, null, 2) + '\n', { mode: 0o600 });
      await syncAll();
      const parts = [
        ...(b ? [`its BIOS part on ${node} (${b.mib} MiB, core at sector ${b.coreLba})`] : [`no BIOS part (${sector}-byte sectors)`]),
        ...(uefi ? [`its UEFI part on ${esp?.node} (PARTUUID ${uefi.partuuid}: keep it)`] : []),
      ];
      const line = `boot kit on ${node}, ${parts.join(', ')}: a power cut after the point of no return boots the reimage initrd with "${args}"`;
      log.info(line);
      return line;
    } finally {
      await umount(mnt);
    }
  } finally {
    if (!o.initrd) await rm(join(work, 'initrd.img'), { force: true });
    await rm(join(work, 'kit.cfg'), { force: true });
    await rm(join(work, 'core.img'), { force: true });
    await rm(join(work, 'back'), { force: true });
    await rmdir(mnt).catch(() => {});
    await rmdir(work).catch(() => {});
  }
}

// biosPart: the kernel, the initrd and GRUB's core image placed in DIR (on NODE, starting at PARTSTART), and the boot sector that loads them.
async function biosPart(
  dir: string,
  node: string,
  partStart: number,
  kernel: string,
  initrd: string,
  args: string,
  work: string,
): Promise<{ part: NonNullable<Kit['bios']>; mib: string; coreLba: number }> {
  const k = await placed(dir, 'vmlinuz', await readFile(kernel), partStart);
  const i = await placed(dir, 'initrd.img', await readFile(initrd), partStart);
  const script = join(work, 'kit.cfg');
  let text: string;
  try {
    text = kitScript(k.extents, i.extents, args);
  } catch (e) {
    throw new ReimageError('environment', `no kit on ${node}: ${(e as Error).message}; free space on ${node} (or fix the arguments) and make the kit again`);
  }
  await writeFile(script, text);
  await grubMkimage('i386-pc', join(work, 'core.img'), script, CORE_MODULES);
  const raw = await readFile(join(work, 'core.img'));
  // Placed once to learn its sector, then its own blocklist pointed there (rewritten in place: the place stays).
  const first = await placed(dir, 'core.img', raw, partStart);
  const [one, more] = first.extents;
  if (!one || more)
    throw new ReimageError('environment', `the file system on ${node} gave core.img ${first.extents.length} pieces: GRUB's boot sector loads one; free space on ${node} and make the kit again`);
  const core = await placed(dir, 'core.img', pointCore(raw, one[0]), partStart, true);
  if (JSON.stringify(core.extents) !== JSON.stringify(first.extents)) throw new ReimageError('environment', `core.img moved on ${node} while it was rewritten in place: make the kit again`);
  const code = bootCode(await readFile(BOOT_IMG), one[0]);
  return { part: { bootCode: code.toString('hex'), core, kernel: k, initrd: i }, mib: ((k.size + i.size + raw.length) / 2 ** 20).toFixed(0), coreLba: one[0] };
}

// placed: BYTES as DIR/NAME, preallocated (or, with INPLACE, overwritten where it is) and synced; where it lies and its sha256.
async function placed(dir: string, name: string, bytes: Buffer, partStart: number, inPlace = false): Promise<Pieces> {
  const file = join(dir, name);
  const padded = Buffer.alloc(Math.ceil(bytes.length / 512) * 512);
  bytes.copy(padded);
  if (!inPlace) {
    await writeFile(file, '', { mode: 0o600 });
    await fallocate(file, padded.length);
  }
  const fh = await open(file, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, 0);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  const map = await filefrag(file);
  let extents: [number, number][];
  try {
    extents = absolute(parseFilefrag(map, file), partStart, bytes.length);
  } catch (e) {
    throw new ReimageError('environment', `no kit: ${(e as Error).message}; make the kit again on a file system that maps files to fixed blocks (ext4, vfat)`);
  }
  return { file: name, size: bytes.length, sha256: createHash('sha256').update(padded).digest('hex'), extents };
}

// diskOf: the kernel name of the disk a partition NODE is on.
const diskOf = (node: string) => realpath(`/sys/class/block/${basename(node)}/..`).then(basename, () => undefined);

// fatPart: --esp checked: an unmounted FAT partition of DISK, the disk of PART (the bundle's), and its PARTUUID.
async function fatPart(given: string, part: string, disk: string | undefined): Promise<{ node: string; partuuid: string }> {
  const node = await realpath(given).catch(() => {
    throw usageError(`--esp ${given} does not exist: give a FAT partition of the same disk, e.g. /dev/sda4`);
  });
  if (node === part) throw usageError(`--esp ${given} is the bundle's partition (--part): give a separate FAT partition of the same disk`);
  if (!existsSync(`/sys/class/block/${basename(node)}/partition`) || (await diskOf(node)) !== disk)
    throw usageError(`--esp ${given} is not a partition of ${disk ?? 'the disk'} that holds ${part}: the firmware entry and the kit must be on the disk that is reimaged`);
  const probe = await blkidProbe(node);
  if (probe.TYPE !== 'vfat') throw usageError(`--esp ${given} holds ${probe.TYPE ?? 'no file system'}, not FAT: UEFI firmware reads only FAT; give a FAT partition (mkfs.vfat)`);
  const partuuid = probe.PART_ENTRY_UUID;
  if (!partuuid || probe.PART_ENTRY_SCHEME !== 'gpt') throw usageError(`--esp ${given} is not a GPT partition with a PARTUUID: the firmware entry finds it by one`);
  const dev = (await readFile(`/sys/class/block/${basename(node)}/dev`, 'utf8')).trim();
  if ((await readFile('/proc/self/mountinfo', 'utf8')).split('\n').some((l) => l.split(' ')[2] === dev))
    throw usageError(`--esp ${given} is mounted: unmount it first (the kit is written beside the mount, which would not see it)`);
  return { node, partuuid: partuuid.toLowerCase() };
}

// fatPlaced: FILE copied onto the FAT partition NODE as reimage-kit/NAME, read back and compared.
async function fatPlaced(node: string, name: string, file: string, work: string): Promise<FatFile> {
  const bytes = await readFile(file);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  try {
    await fatCopyIn(node, file, `${KIT_DIR}/${name}`);
    const back = join(work, 'back');
    await fatCopyOut(node, `${KIT_DIR}/${name}`, back);
    const got = createHash('sha256')
      .update(await readFile(back))
      .digest('hex');
    if (got !== sha256) throw new Error(`${name} reads back with sha256 ${got}, not ${sha256}`);
  } catch (e) {
    throw new ReimageError(
      'environment',
      `no UEFI kit on ${node}: ${(e as Error).message.split('\n')[0]}; free space on ${node} (it needs ${(bytes.length / 2 ** 20).toFixed(0)} MiB for ${name}) and make the kit again`,
    );
  }
  return { file: name, size: bytes.length, sha256 };
}
