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
    1: 'dir_prealloc',
    2: 'imagic_inodes',
    4: 'has_journal',
    8: 'ext_attr',
    16: 'resize_inode',
    32: 'dir_index',
    64: 'lazy_bg',
    128: 'snapshot_bitmap',
    256: 'sparse_super2',
    512: 'fast_commit',
    1024: 'stable_inodes',
    2048: 'orphan_file',
  },
  ro_compat: {
    1: 'sparse_super',
    2: 'large_file',
    4: 'btree_dir',
    8: 'huge_file',
    16: 'uninit_bg',
    32: 'dir_nlink',
    64: 'extra_isize',
    128: 'snapshot',
    256: 'quota',
    512: 'bigalloc',
    1024: 'metadata_csum',
    2048: 'replica',
    4096: 'read-only',
    8192: 'project',
    16384: 'shared_blocks',
    32768: 'verity',
    65536: 'orphan_present',
  },
  incompat: {
    1: 'compression',
    2: 'filetype',
    4: 'needs_recovery',
    8: 'journal_dev',
    16: 'meta_bg',
    64: 'extent',
    128: '64bit',
    256: 'mmp',
    512: 'flex_bg',
    1024: 'ea_inode',
    4096: 'dirdata',
    8192: 'metadata_csum_seed',
    16384: 'large_dir',
    32768: 'inline_data',
    65536: 'encrypt',
    131072: 'casefold',
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
