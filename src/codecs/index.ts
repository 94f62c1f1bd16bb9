// The codec registry, and detection by magic bytes cross-checked with the
// manifest: a bundle that says zstd must start with zstd's magic, and a bundle
// that says none must not look compressed.
import type { CodecName } from './names.ts';
import { bzip2 } from './bzip2.ts';
import { gzip } from './gzip.ts';
import { none } from './none.ts';
import type { Codec } from './types.ts';
import { xz } from './xz.ts';
import { zstd } from './zstd.ts';

export const codecs = { zstd, gzip, xz, bzip2, none } satisfies Record<CodecName, Codec>;

// detect: the compressed codec whose magic the head carries, or 'none'.
export function detect(head: Buffer): CodecName {
  for (const c of [zstd, gzip, xz, bzip2]) if (c.magic(head)) return c.name;
  return 'none';
}
