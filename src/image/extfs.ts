// An ext2/3/4 superblock read from bytes: size, block size, free blocks and
// inodes, and the feature flags by their e2fsprogs names (lib/e2p/feature.c).
// pack records these in the manifest, so the run can tell before writing
// whether the retained files fit and whether the running kernel can mount the
// new file systems.
import { open } from 'node:fs/promises';

export type ExtInfo = { size: number; blockSize: number; freeBytes: number; freeInodes: number; features: string[] };

export type FeatureClass = 'compat' | 'incompat' | 'ro_compat';

// Bit -> name, per class (ext2_fs.h / e2p/feature.c).
export const FEATURE_BITS: Record<FeatureClass, Record<number, string>> = {
  compat: {
    0x1: 'dir_prealloc',
    0x2: 'imagic_inodes',
    0x4: 'has_journal',
    0x8: 'ext_attr',
    0x10: 'resize_inode',
    0x20: 'dir_index',
    0x40: 'lazy_bg',
    0x80: 'snapshot_bitmap',
    0x100: 'sparse_super2',
    0x200: 'fast_commit',
    0x400: 'stable_inodes',
    0x800: 'orphan_file',
  },
  ro_compat: {
    0x1: 'sparse_super',
    0x2: 'large_file',
    0x4: 'btree_dir',
    0x8: 'huge_file',
    0x10: 'uninit_bg',
    0x20: 'dir_nlink',
    0x40: 'extra_isize',
    0x80: 'snapshot',
    0x100: 'quota',
    0x200: 'bigalloc',
    0x400: 'metadata_csum',
    0x800: 'replica',
    0x1000: 'read-only',
    0x2000: 'project',
    0x4000: 'shared_blocks',
    0x8000: 'verity',
    0x10000: 'orphan_present',
  },
  incompat: {
    0x1: 'compression',
    0x2: 'filetype',
    0x4: 'needs_recovery',
    0x8: 'journal_dev',
    0x10: 'meta_bg',
    0x40: 'extent',
    0x80: '64bit',
    0x100: 'mmp',
    0x200: 'flex_bg',
    0x400: 'ea_inode',
    0x1000: 'dirdata',
    0x2000: 'metadata_csum_seed',
    0x4000: 'large_dir',
    0x8000: 'inline_data',
    0x10000: 'encrypt',
    0x20000: 'casefold',
  },
};
// Unknown bits get e2fsprogs' own names: FEATURE_C12, FEATURE_R17, FEATURE_I31.
const LETTER: Record<FeatureClass, string> = { compat: 'C', ro_compat: 'R', incompat: 'I' };

function names(cls: FeatureClass, mask: number): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    const v = 2 ** bit;
    if (mask & v) out.push(FEATURE_BITS[cls][v] ?? `FEATURE_${LETTER[cls]}${bit}`);
  }
  return out;
}

// parseSuperblock: the 1024 bytes at offset 1024 of an ext file system, or undefined when the magic is not there.
export function parseSuperblock(sb: Buffer): ExtInfo | undefined {
  if (sb.length < 1024 || sb.readUInt16LE(0x38) !== 0xef53) return undefined;
  const logBlock = sb.readUInt32LE(0x18);
  if (logBlock > 6) return undefined;
  const blockSize = 1024 << logBlock;
  const incompat = sb.readUInt32LE(0x60);
  const wide = (incompat & 0x80) !== 0;
  const blocks = sb.readUInt32LE(0x4) + (wide ? sb.readUInt32LE(0x150) * 2 ** 32 : 0);
  const free = sb.readUInt32LE(0xc) + (wide ? sb.readUInt32LE(0x158) * 2 ** 32 : 0);
  return {
    size: blocks * blockSize,
    blockSize,
    freeBytes: free * blockSize,
    freeInodes: sb.readUInt32LE(0x10),
    features: [...names('compat', sb.readUInt32LE(0x5c)), ...names('incompat', incompat), ...names('ro_compat', sb.readUInt32LE(0x64))],
  };
}

// readExtInfo: the superblock of the ext file system starting at OFFSET in FILE, or undefined.
export async function readExtInfo(file: string, offset: number): Promise<ExtInfo | undefined> {
  const fh = await open(file, 'r');
  try {
    const sb = Buffer.alloc(1024);
    const { bytesRead } = await fh.read(sb, 0, 1024, offset + 1024);
    return bytesRead === 1024 ? parseSuperblock(sb) : undefined;
  } finally {
    await fh.close();
  }
}
