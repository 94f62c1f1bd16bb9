// write: RAM -> decompress -> disk. The first MiB (boot code and partition
// table) is held back and written last, after everything else is on the disk
// and synced; the disk's tail beyond the image is zeroed so no old backup GPT
// survives there. On any failure the disk is invalidated on purpose (first and
// last MiB zeroed) so it can never boot a half-written system.
import { codecs } from '../codecs/index.ts';
import { ReimageError } from '../errors.ts';
import { HEAD, openWriter, zeroRange, type Writer } from '../target/writer.ts';
import { describeDisk } from '../target/check.ts';
import { human } from '../util/bytes.ts';
import { createProgress } from '../util/progress.ts';
import type { Ctx } from './context.ts';
import { decodeVerified } from './pipeline.ts';

export async function write(ctx: Ctx): Promise<void> {
  const { log } = ctx;
  const disk = ctx.disk!;
  const m = ctx.bundle!.manifest;
  const w = await openWriter(disk);
  const t0 = Date.now();
  const head = Buffer.alloc(Math.min(HEAD, m.raw.size));
  try {
    const progress = createProgress('writing', m.raw.size, log, process.stderr.isTTY === true);
    const sink = async (block: Buffer, offset: number) => {
      if (offset < head.length) {
        const n = Math.min(head.length - offset, block.length);
        block.copy(head, offset, 0, n);
        if (n < block.length) await w.write(block.subarray(n), offset + n);
        return;
      }
      await w.write(block, offset);
    };
    const got = await decodeVerified(codecs[m.image.codec].decode(ctx.stagedImage!), m, sink, progress.add);
    progress.end();
    // Whatever lies beyond the image in the last MiB of the disk (an old backup GPT) goes.
    if (disk.size > m.raw.size) await zeroRange(w, Math.max(m.raw.size, disk.size - HEAD), disk.size);
    await w.sync();
    await w.write(head, 0);
    await w.sync();
    const seconds = (Date.now() - t0) / 1000;
    ctx.wrote = { bytes: got.size, seconds, sha256: got.sha256 };
    log.info(`wrote ${human(got.size)} to ${describeDisk(disk)} in ${seconds.toFixed(1)} s (${(got.size / 2 ** 20 / Math.max(seconds, 0.001)).toFixed(0)} MiB/s), sha256 ok`);
  } catch (e) {
    await invalidate(w, disk.size, log.warn);
    const why = e instanceof Error ? e.message : String(e);
    throw new ReimageError('writeFailed', `writing the image to ${disk.node} failed after the point of no return (${why}); the disk was made unbootable on purpose: fix the cause and run reimage again`);
  } finally {
    await w.close().catch(() => {});
  }
}

// invalidate: zero the first and last MiB (MBR, primary and backup GPT).
export async function invalidate(w: Writer, size: number, warn: (l: string) => void): Promise<void> {
  try {
    await zeroRange(w, 0, Math.min(HEAD, size));
    await zeroRange(w, Math.max(0, size - HEAD), size);
    await w.sync();
    warn('the disk was invalidated (first and last MiB zeroed): it will not boot until reimaged');
  } catch (e) {
    warn(`could not invalidate the disk: ${(e as Error).message}`);
  }
}
