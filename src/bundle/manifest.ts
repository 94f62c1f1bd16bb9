// The bundle manifest: what the image is (codec, sizes, hashes of the
// compressed and the raw bytes), the image's partition table, and where the new
// system's partitions mount. Validated once here; everything downstream takes
// the inferred type.
import { z } from 'zod';
import { duplicateMountPath, mountPathProblem } from '../util/mountpath.ts';

export const MANIFEST_FORMAT = 'reimage-bundle/1';
import { CODECS, type CodecName } from '../codecs/names.ts';
import { SPEC_KINDS } from '../util/fstab.ts';
import { Layout } from '../target/layout.ts';
import { KeepSelector } from './keepspec.ts';

export { CODECS, type CodecName };

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');
// lvm's own rule for volume group and logical volume names.
const LVM_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;
const size = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const FsInfo = z.strictObject({
  type: z.string().optional(),
  label: z.string().optional(),
  uuid: z.string().optional(),
  // ext2/3/4, from the superblock at pack time: the file system's size, block
  // size, free bytes and inodes (does the retained set fit?) and its feature
  // flags (can the running kernel mount it?). Absent in older bundles.
  size: size.optional(),
  blockSize: z.number().int().positive().max(65536).optional(),
  freeBytes: size.optional(),
  freeInodes: size.optional(),
  features: z
    .array(z.string().regex(/^[A-Za-z0-9_-]{1,40}$/))
    .max(96)
    .optional(),
});

export const Partition = z.strictObject({
  number: z.number().int().positive(),
  start: size,
  size,
  type: z.string(),
  uuid: z.string().optional(),
  name: z.string().optional(),
  fs: FsInfo,
  // An LVM physical volume: its volume group, and each logical volume that is
  // one linear run of extents on it (offset: bytes from the partition's start).
  lvm: z
    .strictObject({
      vg: z.string().regex(LVM_NAME),
      uuid: z.string().min(1),
      lvs: z.array(z.strictObject({ name: z.string().regex(LVM_NAME), uuid: z.string().min(1), offset: size, size, fs: FsInfo })).max(256),
    })
    .optional(),
});
export type Partition = z.infer<typeof Partition>;

export const Table = z.strictObject({
  label: z.enum(['gpt', 'dos']),
  id: z.string(),
  sectorSize: z.number().int().positive(),
  partitions: z.array(Partition).max(128),
});
export type Table = z.infer<typeof Table>;

// How a mount names its partition: the fstab spec kind and value.
export const SpecKind = z.enum(SPEC_KINDS);
export type SpecKind = z.infer<typeof SpecKind>;

// A mount path is refused unless normalised (see util/mountpath.ts): every
// consumer joins it to a root, and `/../x` or `//x` must never reach one.
const mountPath = z.string().superRefine((p, ctx) => {
  const why = mountPathProblem(p);
  if (why) ctx.addIssue({ code: 'custom', message: `mount path ${JSON.stringify(p)} ${why}: expected a normalised absolute path such as /boot/efi` });
});

export const Mount = z.strictObject({
  path: mountPath,
  spec: z.strictObject({ kind: SpecKind, value: z.string().min(1) }),
  partition: z.number().int().positive(),
  // The logical volume (in the volume group on that partition) that holds the file system.
  lv: z.string().regex(LVM_NAME).optional(),
  fstype: z.string().min(1),
  // Which part of the file system is mounted there (btrfs `subvol=@`,
  // `subvolid=256`), from the image's fstab; no other option is accepted.
  options: z
    .string()
    .regex(/^(subvol|subvolid)=[^,\s]+(,(subvol|subvolid)=[^,\s]+)*$/, 'expected only subvol=NAME and subvolid=N, comma-separated')
    .optional(),
});
export type Mount = z.infer<typeof Mount>;

// The casync-compatible chunk index of the raw image (pack --chunks): the
// index file named with its size and sha256 (so the signature covers every
// chunk id), the store directory inside the bundle when pack wrote it there,
// and the chunker's sizes. Ids are SHA512/256, chunks zstd: casync's defaults.
const plainName = z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a plain file name inside the bundle');
export const Chunks = z.strictObject({
  // zst: the same index as one zstd frame, what a fetch downloads (its own
  // size and sha256, checked before it is decompressed; the result is then
  // checked against the plain index's). The plain file stays for casync.
  index: z.strictObject({ file: plainName, size, sha256, zst: z.strictObject({ file: plainName, size, sha256 }).optional() }),
  store: plainName.refine((n) => n !== '.' && n !== '..', 'expected a directory name inside the bundle').optional(),
  // deltas: one file per earlier release (pack --delta-from, chunks/delta.ts):
  // from = the sha256 of that release's plain index, raw = the payload's size.
  deltas: z
    .array(z.strictObject({ from: sha256, file: z.string().regex(/^[A-Za-z0-9_-][A-Za-z0-9._-]*\.rdelta$/, 'expected a plain file name ending in .rdelta'), size, sha256, raw: size }))
    .optional(),
  sizes: z.strictObject({ min: size, avg: size, max: size }),
  digest: z.literal('sha512-256'),
  compression: z.literal('zstd'),
});
export type Chunks = z.infer<typeof Chunks>;

export const Manifest = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  created: z.string(),
  tool: z.string(),
  image: z.strictObject({ file: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a plain file name inside the bundle'), codec: z.enum(CODECS), size, sha256 }),
  raw: z.strictObject({ size, sha256 }),
  // The block map (bmaptool format): which blocks hold data, each range with its sha256.
  bmap: z.strictObject({ file: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a plain file name inside the bundle'), sha256 }).optional(),
  chunks: Chunks.optional(),
  table: Table,
  mounts: z
    .array(Mount)
    .min(1)
    .superRefine((ms, ctx) => {
      const dup = duplicateMountPath(ms.map((m) => m.path));
      if (dup) ctx.addIssue({ code: 'custom', message: `mount path ${dup} is given twice: one partition per mount point` });
    }),
  // The retention list shipped in the bundle, named with its sha256 so the
  // signature covers its bytes (a bare file name, as older packs wrote, is refused).
  retention: z
    .strictObject(
      { file: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a plain file name inside the bundle'), sha256 },
      'expected { file, sha256 } (a bundle made by an older reimage pack names it without its sha256: pack it again)',
    )
    .optional(),
  // reimage capture: the layout of the disk the factory image was taken from
  // (target/layout.ts); a run refuses a target whose layout differs.
  layout: Layout.optional(),
  // Partitions of the target the reimage never writes (pack --keep; target/kept.ts has the syntax).
  keep: z.array(KeepSelector).min(1).max(16).optional(),
  // Which machines the image is for, and its version (anti-rollback).
  compatible: z.string().min(1).max(128).optional(),
  version: z
    .string()
    .regex(/^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$/)
    .optional(),
});
export type Manifest = z.infer<typeof Manifest>;

export { formatIssues } from '../util/json.ts';
