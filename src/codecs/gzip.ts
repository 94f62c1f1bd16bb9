// gzip: decompressed in-process with zlib; packed with pigz when present.
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { firstToolSync } from '../system/exec.ts';
import { compressFile } from '../system/tools.ts';
import { inProcess } from './in-process.ts';
import type { Codec } from './types.ts';

export const gzip: Codec = {
  name: 'gzip',
  ext: '.gz',
  magic: (h) => h.length >= 2 && h[0] === 0x1f && h[1] === 0x8b,
  decode: (file) => inProcess(createReadStream(file, { highWaterMark: 4 << 20 }), createGunzip({ chunkSize: 1 << 20 })),
  encode: async (image, out) => {
    await compressFile(firstToolSync(['pigz', 'gzip']), ['-6'], image, out);
  },
};
