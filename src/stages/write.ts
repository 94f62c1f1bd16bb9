// write: RAM -> decompress -> disk. The old first and last MiB (boot code,
// partition tables) are zeroed before anything else, and the new first MiB is
// held back and written last, after everything else is on the disk and
// synced: a power cut at any moment leaves a disk with no partition table,
// never an old table pointing at half-overwritten partitions. The disk's tail
// beyond the image is zeroed so no old backup GPT survives there. A failed block write is retried from the RAM copy. With
// --verify-written the disk is read back (page cache dropped first) and
// compared with the raw sha256; a mismatch gets one full rewrite from RAM.
// On any failure the disk is invalidated on purpose (first and last MiB
// zeroed) so it can never boot a half-written system.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { codecs } from '../codecs/index.ts';
import { ReimageError } from '../errors.ts';
import { flushBuffers } from '../system/tools.ts';
import { HEAD, openWriter, zeroRange, type Writer } from '../target/writer.ts';
import { describeDisk } from '../target/check.ts';
import type { Disk } from '../target/sysfs.ts';
import { human } from '../util/bytes.ts';
import { createProgress } from '../util/progress.ts';
import type { Log } from '../util/log.ts';
import type { Ctx } from './context.ts';
import { BLOCK, decodeVerified } from './pipeline.ts';
import type { Manifest } from '../bundle/manifest.ts';

export async function write(ctx: Ctx): Promise<void> {
  const { log } = ctx;
  const disk = ctx.disk!;
  const m = ctx.bundle!.manifest;
  const w = await openWriter(disk, (why) => log.warn(why));
  const t0 = Date.now();
  try {
    const got = await writeImage(w, disk, m, ctx.stagedImage!, log);
    if (ctx.o.verifyWritten && !(await readBackOk(disk, m, log))) {
      log.warn(`read-back of ${disk.node} does not match the image: rewriting once from RAM`);
      await writeImage(w, disk, m, ctx.stagedImage!, log);
      if (!(await readBackOk(disk, m, log))) throw new Error(`what ${disk.node} returns differs from what was written, twice: the disk is failing`);
    }
    const seconds = (Date.now() - t0) / 1000;
    ctx.wrote = { bytes: got.size, seconds, sha256: got.sha256, ...(ctx.o.verifyWritten ? { readBack: 'ok' as const } : {}) };
    log.info(`wrote ${human(got.size)} to ${describeDisk(disk)} in ${seconds.toFixed(1)} s (${(got.size / 2 ** 20 / Math.max(seconds, 0.001)).toFixed(0)} MiB/s), sha256 ok${ctx.o.verifyWritten ? ', read back ok' : ''}`);
  } catch (e) {
    await invalidate(w, disk.size, log.warn);
    const why = e instanceof Error ? e.message : String(e);
    throw new ReimageError('writeFailed', `writing the image to ${disk.node} failed after the point of no return (${why}); the disk was made unbootable on purpose: fix the cause and run reimage again`);
  } finally {
    await w.close().catch(() => {});
  }
}

// writeImage: one pass of decode -> disk, first MiB last, tail zeroed, synced.
async function writeImage(w: Writer, disk: Disk, m: Manifest, staged: string, log: Log): Promise<{ sha256: string; size: number }> {
  const head = Buffer.alloc(Math.min(HEAD, m.raw.size));
  const progress = createProgress('writing', m.raw.size, log, process.stderr.isTTY === true);
  // Make the disk unbootable first: from here until the new first MiB lands, it has no table.
  await clearTables(w, disk.size);
  const sink = async (block: Buffer, offset: number) => {
    if (offset < head.length) {
      const n = Math.min(head.length - offset, block.length);
      block.copy(head, offset, 0, n);
      if (n < block.length) await w.write(block.subarray(n), offset + n);
      return;
    }
    await w.write(block, offset);
  };
  const got = await decodeVerified(codecs[m.image.codec].decode(staged), m, sink, progress.add);
  progress.end();
  // Whatever lies beyond the image in the last MiB of the disk (an old backup GPT) goes.
  if (disk.size > m.raw.size) await zeroRange(w, Math.max(m.raw.size, disk.size - HEAD), disk.size);
  await w.sync();
  await w.write(head, 0);
  await w.sync();
  return got;
}

// readBackOk: the first raw.size bytes of the disk, read past the page cache, hash to raw.sha256.
async function readBackOk(disk: Disk, m: Manifest, log: Log): Promise<boolean> {
  await flushBuffers(disk.node);
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafeSlow(BLOCK);
  const fh = await open(disk.node, 'r');
  const progress = createProgress('reading back', m.raw.size, log, process.stderr.isTTY === true);
  try {
    for (let at = 0; at < m.raw.size; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(BLOCK, m.raw.size - at), at);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      at += bytesRead;
      progress.add(bytesRead);
    }
  } finally {
    progress.end();
    await fh.close();
  }
  return h.digest('hex') === m.raw.sha256;
}

// clearTables: zero the first and last MiB (MBR, primary and backup GPT), synced.
async function clearTables(w: Writer, size: number): Promise<void> {
  await zeroRange(w, 0, Math.min(HEAD, size));
  await zeroRange(w, Math.max(0, size - HEAD), size);
  await w.sync();
}

// invalidate: clearTables after a failure, never throwing over the failure's own error.
export async function invalidate(w: Writer, size: number, warn: (l: string) => void): Promise<void> {
  try {
    await clearTables(w, size);
    warn('the disk was invalidated (first and last MiB zeroed): it will not boot until reimaged');
  } catch (e) {
    warn(`could not invalidate the disk: ${(e as Error).message}`);
  }
}
