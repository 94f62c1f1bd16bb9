// The target opened for writing: exclusively (O_EXCL, so nothing can mount or
// claim it while we write), positional writes, fsync. Boot-critical bytes (the
// first MiB: boot code and partition table) are held back by the write stage
// and written last, so a disk cut off mid-write never boots a half system.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { ReimageError, targetError } from '../errors.ts';
import type { Disk } from './sysfs.ts';

export const HEAD = 1 << 20;

export type Writer = {
  write: (buf: Buffer, offset: number) => Promise<void>;
  sync: () => Promise<void>;
  close: () => Promise<void>;
};

// Attempts per block: a failed write is retried from the same RAM buffer.
export const WRITE_ATTEMPTS = 3;

export async function openWriter(d: Disk, warn: (line: string) => void = () => {}): Promise<Writer> {
  let fh: FileHandle;
  try {
    fh = await open(d.node, constants.O_RDWR | constants.O_EXCL);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw targetError(`target ${d.path} cannot be opened exclusively for writing (${code}): something holds it; stop it and try again`);
  }
  return {
    write: async (buf, offset) => {
      let done = 0;
      while (done < buf.length) {
        const { bytesWritten } = await writeRetrying(fh, buf.subarray(done), offset + done, d.node, warn);
        if (bytesWritten === 0) throw new ReimageError('writeFailed', `writing ${d.node} at byte ${offset + done} wrote nothing (end of device?)`);
        done += bytesWritten;
      }
    },
    sync: () => fh.sync(),
    close: () => fh.close(),
  };
}

// zeroRange: overwrite [start, end) with zeros (tail cleanup, invalidation).
export async function zeroRange(w: Writer, start: number, end: number): Promise<void> {
  const zeros = Buffer.alloc(Math.min(HEAD, Math.max(0, end - start)));
  for (let at = start; at < end; at += zeros.length) await w.write(zeros.subarray(0, Math.min(zeros.length, end - at)), at);
}

async function writeRetrying(fh: FileHandle, buf: Buffer, at: number, node: string, warn: (line: string) => void): Promise<{ bytesWritten: number }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fh.write(buf, 0, buf.length, at);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (attempt >= WRITE_ATTEMPTS) {
        throw new ReimageError('writeFailed', `writing ${node} at byte ${at} failed ${attempt} times (${err.code}: ${err.message})`, { offset: at });
      }
      warn(`writing ${node} at byte ${at} failed (${err.code}); retrying from RAM (${attempt}/${WRITE_ATTEMPTS - 1})`);
    }
  }
}
