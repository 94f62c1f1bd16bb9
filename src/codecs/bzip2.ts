// bzip2: the classic image.bz2. lbzip2 decompresses ordinary bzip2 files on
// every core (pbzip2 only parallelises files it made itself); plain bzip2 is
// the fallback. The tool is chosen once, when decoding starts.
import { firstToolSync } from '../system/exec.ts';
import { compressFile } from '../system/tools.ts';
import { external } from './external.ts';
import type { Codec } from './types.ts';

export const bzip2: Codec = {
  name: 'bzip2',
  ext: '.bz2',
  // "BZh" + block size digit 1-9.
  magic: (h) => h.length >= 4 && h.toString('latin1', 0, 3) === 'BZh' && h[3]! >= 0x31 && h[3]! <= 0x39,
  decode: (file) => external(firstToolSync(['lbzip2', 'bzip2']), ['-dc'], file),
  encode: async (image, out) => {
    await compressFile(firstToolSync(['lbzip2', 'bzip2']), ['-9'], image, out);
  },
};
