// Copying a retained file's bytes between two open files, sparse files kept
// sparse. Node has no SEEK_DATA/SEEK_HOLE, so a sparse file is copied whole
// and every all-zero block of BLOCK bytes is left unwritten (a hole), then the
// file is truncated to its size so a trailing hole is kept. This reads the
// holes (as zeros) but never stores them: the RAM stage and the new file
// system hold only the blocks that have data. Only files the scan found
// sparse are copied this way; a dense file with zero blocks stays dense.
import type { FileHandle } from 'node:fs/promises';

const BLOCK = 4096;
const CHUNK = 1 << 20;
const ZERO = Buffer.alloc(BLOCK);

// A copy failure, saying which side failed: reading the source or writing the destination.
export class CopyError extends Error {
  readonly side: 'read' | 'write';
  override readonly cause: NodeJS.ErrnoException;
  constructor(side: 'read' | 'write', cause: NodeJS.ErrnoException) {
    super(cause.message);
    this.side = side;
    this.cause = cause;
  }
  get code(): string | undefined {
    return this.cause.code;
  }
}

const tagged = async <T>(side: 'read' | 'write', p: Promise<T>): Promise<T> => {
  try {
    return await p;
  } catch (e) {
    throw new CopyError(side, e as NodeJS.ErrnoException);
  }
};

// copyBytes: FROM (position 0 to EOF) into TO; with SPARSE, all-zero blocks
// become holes. SIZEHINT (the size found by the scan) keeps the buffer small
// for small files: a 1 MiB buffer per file made 10,000 small files slow.
export async function copyBytes(from: FileHandle, to: FileHandle, sparse: boolean, sizeHint = CHUNK): Promise<number> {
  const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(BLOCK, sizeHint + 1)));
  let pos = 0;
  for (;;) {
    const { bytesRead } = await tagged('read', from.read(buf, 0, buf.length, pos));
    if (bytesRead === 0) break;
    if (!sparse) {
      await tagged('write', to.write(buf, 0, bytesRead, pos));
    } else {
      // Runs of blocks with data are written in one call each.
      let run = -1;
      for (let off = 0; ; off += BLOCK) {
        const n = Math.max(0, Math.min(BLOCK, bytesRead - off));
        const data = n > 0 && !buf.subarray(off, off + n).equals(n === BLOCK ? ZERO : ZERO.subarray(0, n));
        if (data && run < 0) run = off;
        if (!data && run >= 0) {
          await tagged('write', to.write(buf, run, Math.min(off, bytesRead) - run, pos + run));
          run = -1;
        }
        if (n === 0) break;
      }
    }
    pos += bytesRead;
  }
  if (sparse) await tagged('write', to.truncate(pos));
  return pos;
}
