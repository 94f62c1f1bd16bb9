// The reference disk as a raw image for pack: every 4 KiB block that is not all
// zeros is copied into a sparse file, except the bytes of the kept partitions,
// which stay holes (zeros). pack's block map then leaves them unmapped: the
// factory image carries nothing of them, and its partition table (copied with
// the rest) still names them at the same place with the same identity.
// writeBack copies chosen ranges of that file onto the disk again, block by
// block where they differ (the factory boot entry, installed into the image,
// is so put onto the reference disk too: the disk ends equal to the image).
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Log } from '../util/log.ts';
import { withProgress } from '../util/progress.ts';

export type Range = { start: number; end: number }; // bytes, end exclusive

const CHUNK = 8 << 20;
const BLOCK = 4096;

const inAny = (at: number, ranges: readonly Range[]) => ranges.find((r) => at >= r.start && at < r.end);

// copyDisk: NODE (SIZE bytes) into the sparse file OUT, with the bytes of SKIP left as holes.
export async function copyDisk(node: string, size: number, out: string, skip: readonly Range[], log: Log): Promise<{ copied: number }> {
  // O_EXCL on a block device: nobody mounts or claims it while it is read.
  const src = await open(node, constants.O_RDONLY | constants.O_EXCL);
  const dst = await open(out, 'wx', 0o600);
  let copied = 0;
  try {
    await dst.truncate(size);
    const buf = Buffer.alloc(CHUNK);
    const zero = Buffer.alloc(BLOCK);
    await withProgress('reading the reference disk', size, log, async (tick) => {
      for (let at = 0; at < size; at += CHUNK) {
        const n = Math.min(CHUNK, size - at);
        const { bytesRead } = await src.read(buf, 0, n, at);
        if (bytesRead !== n) throw new Error(`${node}: short read at byte ${at + bytesRead}`);
        for (let p = 0; p < n; p += BLOCK) {
          const q = Math.min(n, p + BLOCK);
          const skipped = inAny(at + p, skip);
          if (skipped) {
            // Kept ranges start and end on sector bounds, not block bounds: zero the part inside the range only.
            if (skipped.end < at + q) await dst.write(buf, p + (skipped.end - at - p), at + q - skipped.end, skipped.end);
            continue;
          }
          const inside = skip.find((r) => r.start > at + p && r.start < at + q);
          const len = inside ? inside.start - (at + p) : q - p;
          const piece = buf.subarray(p, p + len);
          if (piece.equals(zero.subarray(0, len))) continue;
          await dst.write(piece, 0, len, at + p);
          copied += len;
        }
        tick(n);
      }
    });
    await dst.sync();
    return { copied };
  } finally {
    await dst.close();
    await src.close();
  }
}

// writeBack: the bytes of RANGES from the file RAW onto NODE, only the blocks that differ; returns the bytes written.
export async function writeBack(raw: string, node: string, ranges: readonly Range[]): Promise<number> {
  const from = await open(raw, 'r');
  const to = await open(node, constants.O_RDWR | constants.O_EXCL);
  let written = 0;
  try {
    const a = Buffer.alloc(CHUNK);
    const b = Buffer.alloc(CHUNK);
    for (const r of ranges) {
      for (let at = r.start; at < r.end; at += CHUNK) {
        const n = Math.min(CHUNK, r.end - at);
        await from.read(a, 0, n, at);
        await to.read(b, 0, n, at);
        for (let p = 0; p < n; p += BLOCK) {
          const q = Math.min(n, p + BLOCK);
          if (a.subarray(p, q).equals(b.subarray(p, q))) continue;
          await to.write(a, p, q - p, at + p);
          written += q - p;
        }
      }
    }
    await to.sync();
    return written;
  } finally {
    await to.close();
    await from.close();
  }
}
