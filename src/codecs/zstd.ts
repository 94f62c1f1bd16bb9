// zstd: decompressed in-process (Node 24's zlib has zstd, so the initramfs needs
// no zstd binary); packed with the zstd tool on all cores.
import { createReadStream } from 'node:fs';
import { createZstdDecompress } from 'node:zlib';
import { run } from '../system/exec.ts';
import { inProcess } from './in-process.ts';
import type { Codec } from './types.ts';

export const zstd: Codec = {
  name: 'zstd',
  ext: '.zst',
  magic: (h) => h.length >= 4 && h.readUInt32LE(0) === 0xfd2fb528,
  // 1 MiB output chunks: the 16 KiB default costs a thread-pool round trip per 16 KiB.
  decode: (file) => inProcess(createReadStream(file, { highWaterMark: 4 << 20 }), createZstdDecompress({ chunkSize: 1 << 20 })),
  encode: async (image, out) => {
    await run('zstd', ['-q', '-T0', '-9', '-f', '-o', out, image], { timeoutMs: 6 * 3600_000 });
  },
};
