// copySparse: a file's bytes copied so that runs of zero blocks become holes
// (never written), and the copy synced. Node has no SEEK_DATA/SEEK_HOLE, so
// holes are found by looking at the bytes: a sparse source stays sparse, and
// an allocated run of zeros becomes a hole too (the bytes read back the same).
import { open } from 'node:fs/promises';
import { checkpoint } from './interrupt.ts';

const CHUNK = 1 << 20;
const PAGE = 4096;

const isZero = (b: Buffer) => b.every((x) => x === 0);

// copySparse: FROM into a new file TO (mode 0600, must not exist); returns the byte count.
export async function copySparse(from: string | Buffer, to: string | Buffer, signal?: AbortSignal): Promise<number> {
  const src = await open(from, 'r');
  const dst = await open(to, 'wx', 0o600);
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = 0;
  try {
    for (;;) {
      checkpoint(signal);
      const { bytesRead } = await src.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      for (let a = 0; a < bytesRead; ) {
        const b = Math.min(a + PAGE, bytesRead);
        if (isZero(buf.subarray(a, b))) {
          a = b;
          continue;
        }
        // A run of non-zero pages, written at once.
        let end = b;
        while (end < bytesRead && !isZero(buf.subarray(end, Math.min(end + PAGE, bytesRead)))) end = Math.min(end + PAGE, bytesRead);
        await dst.write(buf, a, end - a, pos + a);
        a = end;
      }
      pos += bytesRead;
    }
    await dst.truncate(pos);
    await dst.sync();
    return pos;
  } finally {
    await Promise.all([src.close(), dst.close()]);
  }
}
