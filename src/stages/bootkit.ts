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
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rmdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ReimageError, targetError } from '../errors.ts';
import { blkidProbe, mount, umount } from '../system/tools.ts';
import { BOOT_CODE, KIT_DIR, KitSchema, type Kit, type Pieces } from '../target/bootkit.ts';
import type { Disk } from '../target/sysfs.ts';
import type { Writer } from '../target/writer.ts';
import type { Run } from './context.ts';

// What the write stage needs: the kit's boot code, and (once the image's first MiB is known) the image's own.
export type BootKit = { where: string; code: Buffer; imageCode?: Buffer };

// loadKit: the kit on the bundle's partition PART of DISK, checked against the disk; undefined when there is none.
export async function loadKit(run: Run, disk: Disk, part: string): Promise<BootKit | undefined> {
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
  if (disk.sectorSize !== 512) throw bad(`its BIOS boot sector needs 512-byte sectors, and ${disk.node} has ${disk.sectorSize}-byte ones`);
  const start = Number((await readFile(`/sys/class/block/${basename(part)}/start`, 'utf8').catch(() => 'NaN')).trim());
  if (start !== kit.partStart) throw bad(`it was made for a partition starting at sector ${kit.partStart}, and ${part} starts at ${start}`);
  for (const p of [kit.bios.core, kit.bios.kernel, kit.bios.initrd]) {
    const got = await sectorsSha(disk.node, p);
    if (got !== p.sha256) throw bad(`the disk's sectors listed for ${p.file} hold sha256 ${got}, not the file's ${p.sha256} (the file moved)`);
  }
  run.log.info(`boot kit ${where} checked on the disk: from the point of no return until the restore is done, ${disk.node} boots the reimage initrd`);
  return { where, code: Buffer.from(kit.bios.bootCode, 'hex') };
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
