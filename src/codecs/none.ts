// none: the raw image as it is (through the same glue as the in-process codecs).
import { copyFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import { inProcess } from './in-process.ts';
import type { Codec } from './types.ts';

export const none: Codec = {
  name: 'none',
  ext: '',
  magic: () => true,
  decode: (file) => inProcess(createReadStream(file, { highWaterMark: 4 << 20 }), new PassThrough({ highWaterMark: 4 << 20 })),
  encode: (image, out) => copyFile(image, out),
};
