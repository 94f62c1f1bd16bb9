// zstd: decompressed in-process (Node 24's zlib has zstd, so the initramfs needs
// no zstd binary). pack writes the seekable format (independent frames and a
// seek table, see seekable.ts), which the write stage decodes on every core;
// a plain zstd file (one frame, from the zstd tool) is decoded as one stream.
import { createReadStream } from 'node:fs';
import { createZstdDecompress } from 'node:zlib';
import { encodeSeekable, readSeekTable } from './seekable.ts';
import { inProcess } from './in-process.ts';
import type { Codec } from './types.ts';

export const zstd: Codec = {
  name: 'zstd',
  ext: '.zst',
  magic: (h) => h.length >= 4 && h.readUInt32LE(0) === 0xfd2fb528,
  // 1 MiB output chunks: the 16 KiB default costs a thread-pool round trip per 16 KiB.
  decode: (file) => inProcess(createReadStream(file, { highWaterMark: 4 << 20 }), createZstdDecompress({ chunkSize: 1 << 20 })),
  encode: (image, out, tick) => encodeSeekable(image, out, 9, tick),
  frames: (file) => readSeekTable(file),
};
