// One pass over a file or block device: cut it into chunks with the chunker
// and name each by its SHA512/256 id. The visitor sees each chunk's bytes only
// while it runs (they live in a reused read buffer); it may be async (pack
// writes chunks to the store from it).
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { checkpoint } from '../util/interrupt.ts';
import { type Chunker, cutLength } from './chunker.ts';

export type ScannedChunk = { start: number; size: number; id: Buffer; data: Buffer };

// chunkId: a chunk's id, SHA512/256 of its uncompressed bytes (casync's default digest).
export function chunkId(data: Uint8Array): Buffer {
  return createHash('sha512-256').update(data).digest();
}

const READ = 8 << 20;

// scanChunks: every chunk of PATH in order; returns the bytes read. A read
// error is thrown as it comes (the caller names the seed or image).
export async function scanChunks(path: string, c: Chunker, visit: (ch: ScannedChunk) => void | Promise<void>, signal?: AbortSignal): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ + c.max);
    let have = 0; // bytes in buf
    let at = 0; // where buf[0] is in the file
    let eof = false;
    for (;;) {
      while (!eof && have < buf.length) {
        const { bytesRead } = await fh.read(buf, have, buf.length - have, at + have);
        if (bytesRead === 0) eof = true;
        have += bytesRead;
      }
      checkpoint(signal);
      let start = 0;
      for (;;) {
        let len = cutLength(buf, start, have, c);
        if (len < 0) {
          if (!eof || start === have) break;
          len = have - start;
        }
        const data = buf.subarray(start, start + len);
        const r = visit({ start: at + start, size: len, id: chunkId(data), data });
        if (r) await r;
        start += len;
      }
      if (eof) return at + have;
      buf.copy(buf, 0, start, have);
      at += start;
      have -= start;
    }
  } finally {
    await fh.close();
  }
}
