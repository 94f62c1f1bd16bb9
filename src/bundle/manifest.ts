// The bundle manifest: what the image is (codec, sizes, hashes of the
// compressed and the raw bytes), the image's partition table, and where the new
// system's partitions mount. Validated once here; everything downstream takes
// the inferred type.
import { z } from 'zod';

export const MANIFEST_FORMAT = 'reimage-bundle/1';
export const CODECS = ['zstd', 'gzip', 'xz', 'bzip2', 'none'] as const;
export type CodecName = (typeof CODECS)[number];

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');
const size = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const FsInfo = z.strictObject({
  type: z.string().optional(),
  label: z.string().optional(),
  uuid: z.string().optional(),
});

export const Partition = z.strictObject({
  number: z.number().int().positive(),
  start: size,
  size,
  type: z.string(),
  uuid: z.string().optional(),
  name: z.string().optional(),
  fs: FsInfo,
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
export const SpecKind = z.enum(['LABEL', 'PARTLABEL', 'UUID', 'PARTUUID']);
export type SpecKind = z.infer<typeof SpecKind>;

export const Mount = z.strictObject({
  path: z.string().regex(/^\/[^\0]*$/, 'expected an absolute path'),
  spec: z.strictObject({ kind: SpecKind, value: z.string().min(1) }),
  partition: z.number().int().positive(),
  fstype: z.string().min(1),
});
export type Mount = z.infer<typeof Mount>;

export const Manifest = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  created: z.string(),
  tool: z.string(),
  image: z.strictObject({ file: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a plain file name inside the bundle'), codec: z.enum(CODECS), size, sha256 }),
  raw: z.strictObject({ size, sha256 }),
  // The block map (bmaptool format): which blocks hold data, each range with its sha256.
  bmap: z.strictObject({ file: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a plain file name inside the bundle'), sha256 }).optional(),
  table: Table,
  mounts: z.array(Mount).min(1),
  // The retention list shipped in the bundle, named with its sha256 so the
  // signature covers its bytes (a bare file name, as older packs wrote, is refused).
  retention: z
    .strictObject({ file: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a plain file name inside the bundle'), sha256 }, 'expected { file, sha256 } (a bundle made by an older reimage pack names it without its sha256: pack it again)')
    .optional(),
  // Which machines the image is for, and its version (anti-rollback).
  compatible: z.string().min(1).max(128).optional(),
  version: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$/).optional(),
});
export type Manifest = z.infer<typeof Manifest>;

// One readable line per zod issue: `image.sha256: expected 64 lowercase hex digits`.
export function formatIssues(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(top)'}: ${i.message}`)
    .join('; ');
}
