// xz: decompressed by the xz tool (multi-threaded where the file has blocks).
import { compressFile } from '../system/tools.ts';
import { external } from './external.ts';
import type { Codec } from './types.ts';

const MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

export const xz: Codec = {
  name: 'xz',
  ext: '.xz',
  magic: (h) => h.length >= 6 && h.subarray(0, 6).equals(MAGIC),
  decode: (file) => external('xz', ['-dc', '-T0'], file),
  encode: async (image, out) => {
    await compressFile('xz', ['-T0', '-6'], image, out);
  },
};
