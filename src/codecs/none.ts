// none: the raw image as it is.
import { copyFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import type { Codec } from './types.ts';

export const none: Codec = {
  name: 'none',
  ext: '',
  magic: () => true,
  decode: (file) => {
    const stream = createReadStream(file, { highWaterMark: 4 << 20 });
    const done = new Promise<void>((resolve, reject) => {
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    done.catch(() => {});
    return { stream, done, stop: () => stream.destroy() };
  },
  encode: (image, out) => copyFile(image, out),
};
