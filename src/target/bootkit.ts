// The boot kit's pure parts (arm/kit.ts makes it, stages/bootkit.ts uses it):
// where a file lies on the disk (filefrag's extents, as absolute 512-byte
// sectors), GRUB's BIOS boot sector pointed at a core image by its absolute
// sector, the core image's own first blocklist pointed at its second sector,
// and the embedded GRUB script that boots the kernel and the initrd by
// blocklist: no partition table and no file system is read on the way, so
// the path works whatever mix of old, new and no table the disk holds.
// Field offsets are GRUB's documented i386-pc layout (boot.img: the core's
// sector as a little-endian 64-bit number at 0x5c, the boot drive at 0x64,
// the drive check at 0x66; diskboot's first blocklist entry at 0x1f4: 64-bit
// start, 16-bit length in sectors, 16-bit segment).
import { z } from 'zod';

export const KIT_DIR = 'reimage-kit';
export const KIT_FORMAT = 'reimage-kit/1';
// MBR boot code: everything before the disk signature and the partition table.
export const BOOT_CODE = 440;
const KERNEL_SECTOR = 0x5c;
const DRIVE_CHECK = 0x66;
const LIST_START = 0x1f4;
const LIST_LEN = 0x1fc;

// One piece of a file on its partition, in 512-byte sectors.
export type Extent = { logical: number; physical: number; length: number };

// Where one kit file lies on the disk: absolute sectors, and its sha256 (of the bytes those sectors hold, padded to whole sectors).
const Pieces = z.object({ file: z.string(), size: z.number().int(), sha256: z.string(), extents: z.array(z.tuple([z.number().int(), z.number().int()])) });
export type Pieces = z.infer<typeof Pieces>;

// The UEFI part: the kernel (an EFI stub) and the initrd on a FAT partition of
// the same disk that every run keeps, booted by a firmware entry the run puts
// first in BootOrder at its point of no return and removes when it is done.
const FatFile = z.object({ file: z.string(), size: z.number().int(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
export type FatFile = z.infer<typeof FatFile>;
export const UEFI_LABEL = 'reimage re-entry';
export const uefiLoader = (file: string) => `\\${KIT_DIR}\\${file}`;
// uefiArgs: the EFI stub's arguments: the initrd by its path on the same FAT file system, then ARGS.
export const uefiArgs = (initrd: string, args: string) => `initrd=${uefiLoader(initrd)} ${args}`;

export const KitSchema = z
  .object({
    format: z.literal(KIT_FORMAT),
    created: z.string(),
    // The partition the kit is on (its first sector and PARTUUID when known) and what the loader boots.
    partStart: z.number().int(),
    cmdline: z.string(),
    // BIOS: absent on a disk whose sectors are not 512 bytes (it boots by UEFI only). At least one part.
    bios: z.object({ bootCode: z.string().regex(/^[0-9a-f]{880}$/), core: Pieces, kernel: Pieces, initrd: Pieces }).optional(),
    uefi: z.object({ partuuid: z.string().regex(/^[0-9a-fA-F-]{36}$/), kernel: FatFile, initrd: FatFile }).optional(),
  })
  .refine((k) => k.bios || k.uefi, 'a kit has a BIOS part, a UEFI part or both');
export type Kit = z.infer<typeof KitSchema>;

// A flag that means the extent is not (yet) at a fixed place on the disk.
const UNFIXED = /unknown_loc|delalloc|inline|encoded|not_aligned|unwritten|data_inline|shared/;

// parseFilefrag: the extents of `filefrag -v -b512 FILE`, refused when one is not at a fixed, plain place.
export function parseFilefrag(text: string, file: string): Extent[] {
  const out: Extent[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+(\d+)\.\.\s*(\d+):\s+(\d+):\s*(\d+:)?\s*(.*)$/.exec(line);
    if (!m) continue;
    const flags = m[7] ?? '';
    if (UNFIXED.test(flags)) throw new Error(`${file} has an extent that is not at a fixed place on the disk (filefrag flags: ${flags.trim()})`);
    out.push({ logical: Number(m[1]), physical: Number(m[3]), length: Number(m[5]) });
  }
  if (!out.length) throw new Error(`filefrag found no extents for ${file}`);
  return out;
}

// absolute: EXTENTS as [first sector, count] on the whole disk (the partition starts at PARTSTART), covering SIZE bytes in order.
export function absolute(extents: readonly Extent[], partStart: number, size: number): [number, number][] {
  const need = Math.ceil(size / 512);
  const sorted = [...extents].sort((a, b) => a.logical - b.logical);
  const out: [number, number][] = [];
  let at = 0;
  for (const e of sorted) {
    if (at >= need) break;
    if (e.logical !== at) throw new Error(`the extents leave a hole at sector ${at} of the file`);
    const take = Math.min(e.length, need - at);
    const last = out[out.length - 1];
    if (last && last[0] + last[1] === partStart + e.physical) last[1] += take;
    else out.push([partStart + e.physical, take]);
    at += take;
  }
  if (at < need) throw new Error(`the extents cover ${at} of the file's ${need} sectors`);
  return out;
}

// blocklist: GRUB's block-list notation for PIECES on the device DEV ("(hd0)100+8,300+2").
export const blocklist = (dev: string, pieces: readonly [number, number][]): string => `${dev}${pieces.map(([a, n]) => `${a}+${n}`).join(',')}`;

// bootCode: the first 440 bytes of GRUB's boot.img, set to load the core image at CORELBA from the drive the BIOS booted.
export function bootCode(bootImg: Buffer, coreLba: number): Buffer {
  if (bootImg.length !== 512 || bootImg.readUInt16LE(510) !== 0xaa55) throw new Error('boot.img is not a 512-byte boot sector ending in 55 AA');
  const b = Buffer.from(bootImg.subarray(0, BOOT_CODE));
  b.writeBigUInt64LE(BigInt(coreLba), KERNEL_SECTOR);
  // A hard disk: whatever drive number the BIOS passes is taken as one (GRUB's setup does the same for hard disks).
  b.writeUInt16LE(0x9090, DRIVE_CHECK);
  return b;
}

// pointCore: CORE (an i386-pc core.img, written at CORELBA in one piece) with its first blocklist starting at its second sector.
export function pointCore(core: Buffer, coreLba: number): Buffer {
  const sectors = Math.ceil(core.length / 512) - 1;
  if (core.length < 1024 || core.readUInt16LE(LIST_LEN) !== sectors) throw new Error(`not a GRUB i386-pc core image (its first blocklist does not count its ${sectors} further sectors)`);
  const c = Buffer.from(core);
  c.writeBigUInt64LE(BigInt(coreLba + 1), LIST_START);
  return c;
}

// kitScript: the GRUB script embedded in the core image: the kernel and the initrd by block list on the boot disk, with ARGS.
// GRUB reads a block list of several pieces short ("premature end of file", seen with GRUB 2.06 on a
// 5-piece initrd): the kernel must be one piece, and each piece of the initrd is given as a file of its
// own (GRUB's initrd concatenates its files; each piece is whole sectors, so no padding goes between).
export function kitScript(kernel: readonly [number, number][], initrd: readonly [number, number][], args: string): string {
  if (kernel.length !== 1) throw new Error(`the kernel lies in ${kernel.length} pieces on the disk: GRUB's block list loads it from one`);
  if (/[\n'\\$;]/.test(args)) throw new Error(`the kernel arguments "${args}" hold a character the kit's GRUB script cannot carry (newline, quote, backslash, $ or ;)`);
  // GRUB's own messages (an error reading a block list) also go to the first serial port, where a kiosk's console often is.
  return [
    'serial --unit=0 --speed=115200',
    'terminal_output --append serial',
    'echo reimage: power-loss boot kit: booting the reimage initrd',
    `linux ${blocklist('($root)', kernel)} ${args}`,
    `initrd ${initrd.map((x) => blocklist('($root)', [x])).join(' ')}`,
    'boot',
    '',
  ].join('\n');
}
