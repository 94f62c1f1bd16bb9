// The target opened for writing: exclusively (O_EXCL, so nothing can mount or
// claim it while we write), positional writes, fsync. Boot-critical bytes (the
// first MiB: boot code and partition table) are held back by the write stage
// and written last, so a disk cut off mid-write never boots a half system.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { ReimageError, targetError } from '../errors.ts';
import { alignedBuffer } from '../util/aligned.ts';
import type { Disk } from './sysfs.ts';
import { clip } from './kept.ts';

export const HEAD = 1 << 20;

export type Writer = {
  write: (buf: Buffer, offset: number) => Promise<void>;
  sync: () => Promise<void>;
  close: () => Promise<void>;
  // Whether whole aligned blocks bypass the page cache (O_DIRECT).
  direct: boolean;
};

// Attempts per block: a failed write is retried from the same RAM buffer.
export const WRITE_ATTEMPTS = 3;

// The fsync watermark: at most this much written through the page cache
// before it is synced (or one write, when a single write is larger), so a
// cancel or close never waits for gigabytes of dirty pages to drain (on a
// 20 MB/s USB stick, 64 MiB is about 3 s).
export const DIRTY_LIMIT = 64 << 20;

// openWriter: the disk opened exclusively, with O_DIRECT where the kernel
// takes it (measured: buffered writes through the page cache cost about 2x).
// Writes that O_DIRECT refuses (a buffer or length not aligned to the sector
// size) go through a second, buffered descriptor instead. (OPENFILE is
// replaceable for the unit tests of the retries and the watermark.)
export async function openWriter(d: Disk, warn: (line: string) => void = () => {}, openFile: typeof open = open): Promise<Writer> {
  const excl = constants.O_RDWR | constants.O_EXCL;
  let main: FileHandle;
  let direct = true;
  try {
    main = await openFile(d.node, excl | constants.O_DIRECT).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EINVAL') throw e;
      direct = false;
      return openFile(d.node, excl);
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw targetError(`target ${d.path} cannot be opened exclusively for writing (${code}): something holds it; stop it and try again`);
  }
  // Not O_EXCL: the exclusive claim above already keeps everyone else out.
  const buffered = direct ? await openFile(d.node, constants.O_RDWR) : main;
  const aligned = (buf: Buffer, at: number) => direct && at % d.sectorSize === 0 && buf.length % d.sectorSize === 0;
  let dirty = 0;
  const put = async (buf: Buffer, at: number): Promise<number> => {
    if (aligned(buf, at)) {
      const r = await main.write(buf, 0, buf.length, at).catch((e: NodeJS.ErrnoException) => (e.code === 'EINVAL' ? undefined : Promise.reject(e)));
      if (r) return r.bytesWritten;
    }
    // Synced before the write that would take it past the watermark, not after.
    if (dirty > 0 && dirty + buf.length > DIRTY_LIMIT) {
      dirty = 0;
      await buffered.datasync();
    }
    const n = (await buffered.write(buf, 0, buf.length, at)).bytesWritten;
    dirty += n;
    return n;
  };
  return {
    direct,
    write: async (buf, offset) => {
      let done = 0;
      while (done < buf.length) {
        const n = await writeRetrying(put, buf.subarray(done), offset + done, d.node, warn);
        if (n === 0) throw new ReimageError('writeFailed', `writing ${d.node} at byte ${offset + done} wrote nothing (end of device?)`);
        done += n;
      }
    },
    sync: async () => {
      dirty = 0;
      await buffered.sync();
      if (buffered !== main) await main.sync();
    },
    close: async () => {
      if (buffered !== main) await buffered.close();
      await main.close();
    },
  };
}

// guardWriter: W that never writes a byte inside KEPT ([from, to) ranges, the
// kept partitions): each write is cut around them. Every write of the run
// (image, zeros, invalidation) goes through it, so no path can reach them.
export function guardWriter(w: Writer, kept: readonly (readonly [number, number])[]): Writer {
  if (!kept.length) return w;
  return {
    ...w,
    write: async (buf, offset) => {
      for (const [a, b] of clip(offset, offset + buf.length, kept)) await w.write(buf.subarray(a - offset, b - offset), a);
    },
  };
}

// zeroRange: overwrite [start, end) with zeros (tail cleanup, invalidation).
export async function zeroRange(w: Writer, start: number, end: number): Promise<void> {
  const zeros = alignedBuffer(Math.min(HEAD, Math.max(0, end - start)));
  for (let at = start; at < end; at += zeros.length) await w.write(zeros.subarray(0, Math.min(zeros.length, end - at)), at);
}

async function writeRetrying(put: (buf: Buffer, at: number) => Promise<number>, buf: Buffer, at: number, node: string, warn: (line: string) => void): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await put(buf, at);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (attempt >= WRITE_ATTEMPTS) {
        throw new ReimageError('writeFailed', `writing ${node} at byte ${at} failed ${attempt} times (${err.code}: ${err.message})`, { offset: at });
      }
      warn(`writing ${node} at byte ${at} failed (${err.code}); retrying from RAM (${attempt}/${WRITE_ATTEMPTS - 1})`);
    }
  }
}
