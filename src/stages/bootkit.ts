// The power-loss boot path (arm/kit.ts makes the kit): when the bundle is read
// from a kept partition of the target that holds reimage-kit/, the run checks
// before the point of no return that the disk's sectors hold the kit's files
// exactly where kit.json says (else it refuses: nothing written). From the
// moment the old tables are cleared until every retained entry is back, LBA
// 0's boot code is the kit's (GRUB's boot.img pointed at the kit's core
// image, which boots the reimage initrd by block list): the image's own boot
// code is held back and written only after the restore, just before the
// re-entry record is marked done. The partition table bytes of LBA 0 are
// never touched here.
//
// A kit with a UEFI part (reimage kit --esp) on a machine that started by
// UEFI, in a run that updates firmware entries: its kernel and initrd on a
// kept FAT partition are checked the same way (by sha256, through a read-only
// mount), and from the point of no return a firmware entry "reimage re-entry"
// boots them, first in BootOrder (made again after every table write that
// could renumber the partition); it is removed when every retained entry is
// back, before the image's own entry is made. A BIOS part on a disk of other
// than 512-byte sectors is left out when the UEFI part is the path.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rmdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ReimageError, targetError } from '../errors.ts';
import { blkidProbe, efibootmgrCreate, efibootmgrDelete, efibootmgrList, efivarsReady, mount, sfdiskJson, umount } from '../system/tools.ts';
import { BOOT_CODE, KIT_DIR, KitSchema, UEFI_LABEL, uefiArgs, uefiLoader, type Kit, type Pieces } from '../target/bootkit.ts';
import { parseBootVars } from '../target/efientries.ts';
import { hashFile } from '../util/hash.ts';
import type { KeptPart } from './kept.ts';
import type { Disk } from '../target/sysfs.ts';
import type { Writer } from '../target/writer.ts';
import type { Run } from './context.ts';

// What the write stage needs: the kit's boot code (its BIOS part, on a disk of 512-byte sectors), and (once the image's first MiB is known) the image's own.
// UEFI: the kept FAT partition with the kit's kernel and initrd (by PARTUUID), and the kernel's arguments.
// done: its firmware entry was removed after a complete restore (kitDone).
export type BootKit = { where: string; code?: Buffer; imageCode?: Buffer; uefi?: { partuuid: string; args: string }; done?: boolean };

// loadKit: the kit on the bundle's partition PART of DISK, checked against the disk; undefined when there is none.
// It only reads (plan checks it too).
export async function loadKit(run: Run, disk: Disk, part: string, kept: readonly KeptPart[]): Promise<BootKit | undefined> {
  const dir = join(run.runDir, 'kit');
  await mkdir(dir, { recursive: true });
  const fs = (await blkidProbe(part, undefined, run.sys)).TYPE;
  if (!fs) return undefined;
  await mount(part, dir, fs, 'ro,nosuid,nodev,noexec', run.sys);
  let text: string | undefined;
  try {
    text = await readFile(join(dir, KIT_DIR, 'kit.json'), 'utf8').catch(() => undefined);
  } finally {
    await umount(dir, run.sys);
    await rmdir(dir).catch(() => {});
  }
  const where = `${part}:/${KIT_DIR}`;
  if (text === undefined) {
    run.log.info(`no boot kit on ${part} (${KIT_DIR}/kit.json): a power cut after the point of no return needs the reimage initrd booted by hand once (reimage kit makes one)`);
    return undefined;
  }
  const bad = (why: string) => targetError(`boot kit ${where}: ${why}; nothing was written: make it again with reimage kit --part ${part}, or remove ${KIT_DIR}`);
  let kit: Kit;
  try {
    kit = KitSchema.parse(JSON.parse(text));
  } catch (e) {
    throw bad(`kit.json is not a valid kit (${(e as Error).message.split('\n')[0]})`);
  }
  const start = Number((await readFile(`${run.sys.sysRoot}/class/block/${basename(part)}/start`, 'utf8').catch(() => 'NaN')).trim());
  if (start !== kit.partStart) throw bad(`it was made for a partition starting at sector ${kit.partStart}, and ${part} starts at ${start}`);
  const uefi = await uefiPart(run, disk, kit, kept, bad);
  // The BIOS part: on 512-byte sectors only; a UEFI machine on another sector size goes by the UEFI part alone.
  const bios = kit.bios && (disk.sectorSize === 512 || !uefi) ? kit.bios : undefined;
  if (kit.bios && !bios) run.log.info(`${disk.node} has ${disk.sectorSize}-byte sectors: the kit's BIOS part is not used`);
  if (bios) {
    if (disk.sectorSize !== 512) throw bad(`its BIOS boot sector needs 512-byte sectors, and ${disk.node} has ${disk.sectorSize}-byte ones`);
    for (const p of [bios.core, bios.kernel, bios.initrd]) {
      const got = await sectorsSha(disk.node, p);
      if (got !== p.sha256) throw bad(`the disk's sectors listed for ${p.file} hold sha256 ${got}, not the file's ${p.sha256} (the file moved)`);
    }
  }
  if (!bios && !uefi) {
    run.log.warn(
      `boot kit ${where} has no part this run can use (${kit.bios ? 'a BIOS part' : 'no BIOS part'}, ${kit.uefi ? 'a UEFI part' : 'no UEFI part'}, ${disk.sectorSize}-byte sectors): a power cut after the point of no return needs the reimage initrd booted by hand once`,
    );
    return undefined;
  }
  const how = [
    ...(bios ? [`LBA 0 of ${disk.node} boots the reimage initrd`] : []),
    ...(uefi ? [`its firmware entry boots the reimage initrd from the kept FAT partition (PARTUUID ${uefi.partuuid})`] : []),
  ].join('; ');
  run.log.info(`boot kit ${where} checked on the disk: from the point of no return until the restore is done, ${how}`);
  return { where, ...(bios ? { code: Buffer.from(bios.bootCode, 'hex') } : {}), ...(uefi ? { uefi } : {}) };
}

const byUefi = (run: Run) => existsSync(join(run.sys.sysRoot, 'firmware/efi'));
const EFI_GLOBAL = '8be4df61-93ca-11d2-aa0d-00e098032b8c';

// uefiPart: the kit's UEFI part checked before the point of no return, when
// this machine started by UEFI and the run updates firmware entries
// (efiEntry: the initramfs; never a workstation's own entries for a disk in a
// dock): its kept FAT partition (found by PARTUUID in the table now: a
// re-entry's may be the image's, numbered anew), the two files by sha256,
// and the firmware's variables readable through efibootmgr.
async function uefiPart(run: Run, disk: Disk, kit: Kit, kept: readonly KeptPart[], bad: (why: string) => Error): Promise<BootKit['uefi']> {
  const log = run.log;
  if (!kit.uefi) {
    if (byUefi(run) && run.o.efiEntry)
      log.warn('this machine started by UEFI and the boot kit has no UEFI part (reimage kit --esp): a power cut after the point of no return needs the reimage initrd booted by hand once');
    return undefined;
  }
  if (!byUefi(run) || !run.o.efiEntry) {
    log.info(`the boot kit's UEFI part is not used: ${byUefi(run) ? 'this run does not update firmware entries (--efi-entry)' : 'this machine started by BIOS'}`);
    return undefined;
  }
  const u = kit.uefi;
  const id = u.partuuid.toLowerCase();
  if (!kept.some((x) => x.uuid.toLowerCase() === id))
    throw bad(
      `its UEFI part is on the partition PARTUUID ${u.partuuid}, which this run does not keep (a reimage would overwrite it): keep it (the bundle's or the policy's keep PARTUUID=${u.partuuid})`,
    );
  const node = (await sfdiskJson(disk.node, run.sys))?.partitions.find((x) => (x.uuid ?? '').toLowerCase() === id)?.node;
  if (!node) throw bad(`the table on ${disk.node} has no partition PARTUUID ${u.partuuid} (its UEFI part)`);
  const dir = join(run.runDir, 'kit-esp');
  await mkdir(dir, { recursive: true });
  await mount(node, dir, 'vfat', 'ro,nosuid,nodev,noexec', run.sys);
  try {
    for (const f of [u.kernel, u.initrd]) {
      const got = await hashFile(join(dir, KIT_DIR, f.file)).catch((e: Error) => ({ sha256: `unreadable (${e.message})`, size: -1 }));
      if (got.sha256 !== f.sha256) throw bad(`${KIT_DIR}/${f.file} on ${node} has sha256 ${got.sha256}, not the kit's ${f.sha256}`);
    }
  } finally {
    await umount(dir, run.sys);
    await rmdir(dir).catch(() => {});
  }
  try {
    await efivarsReady(run.sys.sysRoot, run.sys);
    await efibootmgrList(run.sys);
  } catch (e) {
    throw bad(`the firmware's boot entries cannot be read here (${(e as Error).message.split('\n')[0]}), so no entry could boot the kit after a cut`);
  }
  // Secure Boot: the firmware boots only what its keys sign; the kit's kernel is booted without shim.
  const sb = await readFile(join(run.sys.sysRoot, `firmware/efi/efivars/SecureBoot-${EFI_GLOBAL}`)).catch(() => undefined);
  if (sb && sb[sb.length - 1] === 1)
    log.warn(`Secure Boot is on: the firmware may refuse the kit's kernel (booted without shim), and a power cut after the point of no return would then need the reimage initrd booted by hand once`);
  return { partuuid: id, args: uefiArgs('initrd.img', kit.cmdline) };
}

// ours: the firmware entries this kit made (its label, on its partition).
const ours = (text: string, partuuid: string) => parseBootVars(text).entries.filter((e) => e.label === UEFI_LABEL && e.partuuid === partuuid);

// kitEntry: the firmware entry that boots the kit's UEFI part, first in
// BootOrder and active, for the partition's number in the table on NODE now:
// made first, then the kit's older entries removed, so there is no moment
// without one. FRESH (a run's first call) always makes it anew (an older
// kit's entry may carry other arguments); later calls leave an entry that is
// first, active and on that number alone. A failure costs only that path: warned about.
export async function kitEntry(run: Run, node: string, u: NonNullable<BootKit['uefi']>, fresh = false): Promise<void> {
  const { log, sys } = run;
  const via = { ...sys, exit: 'writeFailed' as const };
  try {
    await efivarsReady(sys.sysRoot, via);
    const p = (await sfdiskJson(node, via))?.partitions.find((x) => (x.uuid ?? '').toLowerCase() === u.partuuid);
    const num = Number(/(\d+)$/.exec(p?.node ?? '')?.[1]);
    if (!p || !num) throw new Error(`the table on ${node} has no partition PARTUUID ${u.partuuid}`);
    const before = await efibootmgrList(via);
    const vars = parseBootVars(before);
    const old = ours(before, u.partuuid);
    const first = old.find((e) => e.num === vars.order[0]);
    if (!fresh && old.length === 1 && first?.active && first.part === num) return;
    await efibootmgrCreate(node, num, UEFI_LABEL, uefiLoader('vmlinuz'), via, u.args);
    const made = ours(await efibootmgrList(via), u.partuuid).filter((e) => !old.some((o) => o.num === e.num));
    if (made.length !== 1) throw new Error(`efibootmgr left ${made.length} new "${UEFI_LABEL}" entries`);
    for (const e of old) await efibootmgrDelete(e.num, via);
    log.info(`UEFI boot entry "${UEFI_LABEL}" first in BootOrder (partition ${num}, ${uefiLoader('vmlinuz')}): until the restore is done, a power-on boots the reimage initrd`);
  } catch (e) {
    log.warn(`could not make the UEFI boot entry "${UEFI_LABEL}" (${(e as Error).message.split('\n')[0]}): a power cut now needs the reimage initrd booted by hand once`);
  }
}

// kitDone: right after a complete restore, before the image's own firmware
// entry: the kit's firmware entries removed and checked gone (a failure is
// exit 11 with the kit still booting: the next run finishes the job again).
// The image's own boot code in LBA 0 waits until just before the record is
// marked done (restoreBootCode).
export async function kitDone(run: Run, kit: BootKit): Promise<void> {
  if (!kit.uefi) return;
  const u = kit.uefi;
  try {
    await efivarsReady(run.sys.sysRoot, run.sys);
    for (const e of ours(await efibootmgrList(run.sys), u.partuuid)) await efibootmgrDelete(e.num, run.sys);
    const left = ours(await efibootmgrList(run.sys), u.partuuid);
    if (left.length) throw new Error(`Boot${left.map((e) => e.num).join(', Boot')} still there after the removal`);
  } catch (e) {
    throw new ReimageError(
      'afterWrite',
      `could not remove the UEFI boot entry "${UEFI_LABEL}" after the restore (${(e as Error).message.split('\n')[0]}): the firmware still boots the reimage initrd, which finishes the job again`,
    );
  }
  kit.done = true;
  run.log.info(`UEFI boot entry "${UEFI_LABEL}" removed: the firmware boots the new system`);
}

// sectorsSha: the sha256 of the sectors PIECES lists on NODE, in order.
async function sectorsSha(node: string, p: Pieces): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(node, 'r');
  try {
    for (const [a, n] of p.extents) {
      const buf = Buffer.alloc(n * 512);
      const { bytesRead } = await fh.read(buf, 0, buf.length, a * 512);
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

// layBootCode: LBA 0 as it is on the disk now, its boot code replaced by CODE (through W, synced).
export async function layBootCode(w: Writer, node: string, code: Buffer): Promise<void> {
  const s0 = Buffer.alloc(512);
  const fh = await open(node, 'r');
  try {
    await fh.read(s0, 0, 512, 0);
  } finally {
    await fh.close();
  }
  code.copy(s0, 0, 0, BOOT_CODE);
  await w.write(s0, 0);
  await w.sync();
}

// restoreBootCode: after the restore, the image's own boot code in LBA 0 (the table bytes untouched), synced.
export async function restoreBootCode(node: string, kit: BootKit): Promise<void> {
  if (!kit.imageCode) return;
  const fh = await open(node, 'r+');
  try {
    await fh.write(kit.imageCode, 0, BOOT_CODE, 0);
    await fh.datasync();
  } catch (e) {
    throw new ReimageError(
      'afterWrite',
      `could not write the image's boot code into sector 0 of ${node} after the restore (${(e as Error).message}): the disk still boots the reimage initrd, which finishes the job again`,
    );
  } finally {
    await fh.close();
  }
}
